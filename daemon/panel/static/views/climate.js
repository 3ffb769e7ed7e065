// Curtains (a position slider, open, close, stop) and fans (on, off, speed).

import { h } from "../lib/dom.js";
import { deviceCards, actionButton, press } from "../lib/ui.js";

/** A 0-100 slider that sends `action` when let go, and follows the device otherwise. */
function slider(ctx, device, action, key, label) {
  const input = h("input", { type: "range", min: "0", max: "100", step: "1", class: "slider", "aria-label": label });
  let held = false; // while a finger is on it, the device's reports do not move it
  input.addEventListener("pointerdown", () => (held = true));
  input.addEventListener("change", () => {
    held = false;
    ctx.act(device.id, action, { [key]: Number(input.value) }, input);
  });
  input.addEventListener("blur", () => (held = false));
  return {
    input,
    set(value) {
      if (!held && typeof value === "number") input.value = String(value);
    },
  };
}

function curtainCard(ctx, device) {
  const { t } = ctx;
  const readout = h("span", { class: "readout" });
  const moving = h("span", { class: "badge moving" });
  const pos = slider(ctx, device, "set_position", "position", t("position", { n: "" }));
  const open = actionButton(ctx, device.id, t("open"), "open", {}, "big");
  const close = actionButton(ctx, device.id, t("close"), "close", {}, "big");
  const stop = actionButton(ctx, device.id, t("stop"), "stop", {}, "big");
  const body = [
    h("div", { class: "row" }, readout, moving),
    h("div", { class: "row" }, pos.input),
    h("div", { class: "row" }, open, stop, close),
  ];
  function update(d) {
    const { position, moving: m } = d.state;
    readout.textContent = typeof position === "number" ? t("position", { n: position }) : t("unknown");
    moving.textContent = m ? t(m) : "";
    moving.dataset.moving = m ?? "";
    press(open, m === "opening");
    press(close, m === "closing");
    pos.set(position);
  }
  return { body, update };
}

function fanCard(ctx, device) {
  const { t } = ctx;
  const readout = h("span", { class: "readout" });
  const on = actionButton(ctx, device.id, t("on"), "on", {}, "big");
  const off = actionButton(ctx, device.id, t("off"), "off", {}, "big");
  const speed = slider(ctx, device, "set_speed", "percent", t("speed", { n: "" }));
  const steps = [25, 50, 75, 100].map((p) => actionButton(ctx, device.id, `${p}%`, "set_speed", { percent: p }));
  const body = [
    h("div", { class: "row" }, readout),
    h("div", { class: "row" }, on, off),
    h("div", { class: "row" }, speed.input),
    h("div", { class: "row wrap" }, steps),
  ];
  function update(d) {
    readout.textContent = `${d.state.on ? t("on") : t("off")} · ${t("speed", { n: d.state.percent ?? "?" })}`;
    press(on, d.state.on === true);
    press(off, d.state.on === false);
    speed.set(d.state.percent);
  }
  return { body, update };
}

export default {
  mount(root, ctx) {
    const { t } = ctx;
    const curtains = h("section", {}, h("h2", { class: "section" }, t("curtains")));
    const fans = h("section", {}, h("h2", { class: "section" }, t("fans")));
    root.append(curtains, fans);
    const offs = [
      deviceCards(ctx, curtains, ["curtain"], (d) => curtainCard(ctx, d)),
      deviceCards(ctx, fans, ["fan"], (d) => fanCard(ctx, d)),
    ];
    return () => offs.forEach((off) => off());
  },
};
