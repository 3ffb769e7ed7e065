// The hall as the page knows it: every device, kept live from the event stream.
// Views subscribe to event types; "scene." subscribes to every scene event.

export function createHall() {
  const devices = new Map();
  const listeners = new Map(); // type or prefix -> Set of functions

  function emit(type, payload) {
    for (const [key, fns] of listeners) {
      if (key === type || (key.endsWith(".") && type.startsWith(key))) {
        for (const fn of fns) {
          try {
            fn(payload, type);
          } catch (err) {
            console.error(`listener for ${type} failed`, err);
          }
        }
      }
    }
  }

  return {
    devices,
    device: (id) => devices.get(id),
    ofKind: (...kinds) => [...devices.values()].filter((d) => kinds.includes(d.kind)),

    /** Subscribe; returns the function that unsubscribes. */
    on(type, fn) {
      if (!listeners.has(type)) listeners.set(type, new Set());
      listeners.get(type).add(fn);
      return () => listeners.get(type).delete(fn);
    },

    /** An event from the stream: keep the devices current, then tell the views. */
    receive(type, payload) {
      if (type === "snapshot") {
        devices.clear();
        for (const d of payload.devices) devices.set(d.id, d);
      } else if (type === "state" && devices.has(payload.source)) {
        devices.get(payload.source).state = payload.data;
      } else if (type === "availability" && devices.has(payload.source)) {
        Object.assign(devices.get(payload.source), {
          available: payload.data.available,
          error: payload.data.error,
        });
      }
      emit(type, payload);
    },

    /** What an action's answer says of a device (it may beat its event here). */
    update(device) {
      devices.set(device.id, device);
      emit("state", { source: device.id, data: device.state });
    },

    /** A 503 said the device is down before its event did. */
    markUnavailable(id, error) {
      const d = devices.get(id);
      if (d && d.available) this.receive("availability", { source: id, data: { available: false, error } });
    },
  };
}
