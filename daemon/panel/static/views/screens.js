// Screens: power (warming and cooling shown as they happen), input, mute.

import { deviceCards, actionButton, press, act } from "../lib/ui.js";

function screenCard(ctx, device) {
  const { h, t } = ctx;
  const badge = h("span", { class: "badge power" });
  const on = actionButton(ctx, device.id, t("on"), "on", {}, "big");
  const off = actionButton(ctx, device.id, t("off"), "off", {}, "big");
  const inputs = device.controls.inputs.map((name) => {
    const b = actionButton(ctx, device.id, name, "set_input", { input: name });
    b.dataset.input = name;
    return b;
  });
  const mute = h("button", { type: "button", class: "btn" }, t("mute"));
  mute.addEventListener("click", () => {
    const muted = ctx.hall.device(device.id).state.muted === true;
    act(ctx, device.id, "mute", { on: !muted }, mute);
  });
  const body = [
    h("div", { class: "row" }, h("span", { class: "label" }, t("power")), badge),
    h("div", { class: "row" }, on, off),
    inputs.length ? h("div", { class: "row wrap", role: "group", "aria-label": t("input") }, inputs) : null,
    h("div", { class: "row" }, mute),
  ];
  function update(d) {
    const power = d.state.power;
    badge.dataset.power = power ?? "unknown";
    badge.textContent = power ? t(`power.${power}`) : t("unknown");
    press(on, power === "on" || power === "warming");
    press(off, power === "off" || power === "cooling");
    inputs.forEach((b) => press(b, b.dataset.input === d.state.input));
    press(mute, d.state.muted === true);
    mute.textContent = d.state.muted ? t("muted") : t("mute");
  }
  return { body, update };
}

export default {
  mount(root, ctx) {
    return deviceCards(ctx, root, ["screen"], (d) => screenCard(ctx, d));
  },
};
