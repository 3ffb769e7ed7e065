// The operator seats as the page follows them (docs/seats.md). `GET /seats` once: each
// seat's state, its computers with what this token may do with them (`modes`,
// `share`), the walls. Then each seat's state from its `seats.state` events (its
// consoles, operator, matched layout and watchers), and its layouts, the seat's and
// this token's own, from `GET /seats/{id}/layouts`, again on `seats.layouts`. The
// stream's snapshot (a reconnect, possibly after a restart) reloads everything.

import { attempt } from "./ui.js";

const enc = encodeURIComponent;

/** The id a layout is saved under: the one of that name already saved, else its name
 * made an id, else (a name in Chinese) a new one. */
export function layoutId(name, existing) {
  const same = existing.find((l) => l.name === name);
  if (same) return same.id;
  const slug = name
    .toLowerCase()
    .normalize("NFKD")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40);
  return slug || `layout-${Date.now().toString(36)}`;
}

/**
 * Follow every seat: `onList(seats, walls)` when the list is (re)loaded, `onSeat(seat)`
 * after each change of one, `onLayouts(id, {seat, mine})` when its layouts are read.
 * Returns the seats' actions and `off`.
 */
export function followSeats(ctx, { onList, onSeat, onLayouts }) {
  const seats = new Map();
  let closed = false;

  async function load() {
    const all = await attempt(ctx, ctx.t("seat.seats"), null, () => ctx.api.get("/seats"));
    if (!all || closed) return;
    seats.clear();
    for (const s of all.seats) seats.set(s.id, s);
    onList(all.seats, all.walls);
    await Promise.all(all.seats.map((s) => loadLayouts(s.id)));
  }

  async function loadLayouts(id) {
    const found = await attempt(ctx, id, null, () => ctx.api.get(`/seats/${enc(id)}/layouts`));
    if (found && !closed && seats.has(id)) onLayouts(id, found);
  }

  // An event's state says nothing of this token's rights on the computers (it goes to
  // everyone): those read before are kept.
  function take(state) {
    const old = seats.get(state.id);
    if (!old) return;
    const rights = new Map(old.computers.map((c) => [c.id, c]));
    const seat = { ...state, computers: state.computers.map((c) => ({ ...rights.get(c.id), ...c })) };
    seats.set(seat.id, seat);
    onSeat(seat);
  }

  const offs = [
    ctx.hall.on("seats.state", (event) => take(event.data.state)),
    ctx.hall.on("seats.layouts", (event) => {
      if (event.data.seat === null) load(); // a SIGHUP: rights and layouts may have changed
      else loadLayouts(event.data.seat);
    }),
    ctx.hall.on("snapshot", load),
  ];
  if (ctx.hall.devices.size) load(); // else the stream's first snapshot, soon, loads it

  const name = (id) => seats.get(id)?.name ?? id;
  async function post(id, path, body, button) {
    const answer = await attempt(ctx, name(id), button, () => ctx.api.post(`/seats/${enc(id)}/${path}`, body));
    if (answer) take(answer);
    return answer;
  }

  return {
    get: (id) => seats.get(id),
    off() {
      closed = true;
      offs.forEach((off) => off());
    },
    /** One console to one of the seat's computers (null: dark), in `mode`. */
    route: (id, console, computer, mode, button) =>
      post(id, "route", computer ? { console, computer, mode } : { console }, button),
    recall: (id, layout, mine, button) =>
      post(id, `${mine ? "my-layouts" : "layouts"}/${enc(layout)}/recall`, undefined, button),
    push: (id, body, button) => post(id, "push", body, button),

    /** The seated operator leaves; their consoles become their profile. */
    async logout(id, button) {
      if (await post(id, "logout", undefined, button)) loadLayouts(id);
    },

    /** Sit down at the seat; says what of the operator's own layout was restored. */
    async login(id, button) {
      const answer = await post(id, "login", undefined, button);
      if (!answer) return;
      loadLayouts(id); // the one who sat here before may be this token, profile kept
      const vars = { name: ctx.who.name, seat: name(id), layout: answer.restore?.layout };
      if (!answer.restore) ctx.notify("info", ctx.t("seat.loggedIn", vars), "");
      else if (answer.restore.status === "ok") ctx.notify("info", ctx.t("seat.restored", vars), "");
      else ctx.notify("refused", ctx.t("seat.notRestored", vars), answer.restore.error.message);
    },

    /** Save the consoles' current routes as a layout of this token's (`mine`) or the
     * seat's (facility); says which consoles were left out. */
    async save(id, layoutName, mine, existing, button) {
      const layout = layoutId(layoutName, existing);
      const path = `/seats/${enc(id)}/${mine ? "my-layouts" : "layouts"}/${enc(layout)}`;
      const saved = await attempt(ctx, name(id), button, () => ctx.api.put(path, { name: layoutName }));
      if (!saved) return;
      const skipped = saved.skipped.join("; ");
      ctx.notify("info", ctx.t("seat.saved", { name: layoutName }), skipped ? ctx.t("seat.skipped", { skipped }) : "");
      loadLayouts(id); // an operator's own layouts have no event of their own
    },
  };
}
