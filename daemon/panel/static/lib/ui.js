// What every view of the hall is made of: device cards that follow their device,
// actions with their outcome shown, notices.

import { h, fill } from "./dom.js";

/** A notice in the page's alert region: a refusal's reason, an error. */
export function notify(region, t, kind, title, message) {
  const close = h("button", { class: "notice-close", type: "button", "aria-label": t("dismiss") }, "×");
  const el = h(
    "div",
    { class: `notice ${kind}`, role: kind === "refused" || kind === "error" ? "alert" : "status" },
    h("strong", {}, title),
    h("span", { class: "notice-text" }, message),
    close,
  );
  close.addEventListener("click", () => el.remove());
  region.prepend(el);
  while (region.children.length > 4) region.lastChild.remove();
  setTimeout(() => el.remove(), 12000);
  return el;
}

/**
 * Run `call` (an API call) with `button` marked busy meanwhile. An error is shown (a
 * refusal with its reason), handed to `onError`, and null returned.
 */
export async function attempt(ctx, what, button, call, onError = () => {}) {
  button?.setAttribute("aria-busy", "true");
  try {
    return await call();
  } catch (err) {
    reportError(ctx, err, what);
    onError(err);
    return null;
  } finally {
    button?.removeAttribute("aria-busy");
  }
}

/**
 * Run a device action and show what came of it. The answer's state is the device's,
 * read back once it confirmed; a refusal (409) shows its reason, an unavailable
 * device (503) is marked so at once. Returns the device, or null when it failed.
 */
export function act(ctx, id, action, args = {}, button = null) {
  const what = ctx.hall.device(id)?.name ?? id;
  const run = async () => {
    const device = await ctx.api.post(`/devices/${encodeURIComponent(id)}/actions/${action}`, args);
    ctx.hall.update(device);
    return device;
  };
  return attempt(ctx, what, button, run, (err) => {
    if (err.status === 503) ctx.hall.markUnavailable(id, err.message);
  });
}

/** Show an API error: 409 (the device or matrix refused) and 403 (outside the token's
 * rights) as refusals with their reasons, others as failures. */
export function reportError(ctx, err, what) {
  if (err.status === 401) return; // the page is already back at the login
  if (err.status === 409) ctx.notify("refused", `${ctx.t("refused")}: ${what}`, err.message);
  else if (err.status === 403) ctx.notify("refused", `${ctx.t("forbidden")}: ${what}`, err.message);
  else ctx.notify("error", `${ctx.t("failed")}: ${what}`, err.message);
}

/**
 * One card per device of `kinds`, each drawn by `make(device)` -> {body, update}.
 * The card follows the device: its state, its availability (an unavailable device's
 * controls are disabled, with the reason shown), and the token's role (a viewer's
 * controls are disabled too). Returns the cleanup.
 */
export function deviceCards(ctx, root, kinds, make) {
  const grid = h("div", { class: "cards" });
  root.append(grid);
  let cards = new Map();

  function card(device) {
    const drawn = make(device);
    const status = h("span", { class: "status" });
    const error = h("p", { class: "device-error" });
    const controls = h("fieldset", { class: "controls" }, drawn.body);
    const el = h(
      "section",
      { class: `card ${device.kind}`, dataset: { device: device.id } },
      h("header", {}, h("h2", {}, device.name), status),
      error,
      controls,
    );
    const update = (d) => {
      el.classList.toggle("unavailable", !d.available);
      controls.disabled = !d.available || !ctx.may.operate;
      fill(status, d.available ? "" : ctx.t("unavailable"));
      fill(error, d.available ? "" : d.error || "");
      drawn.update(d);
    };
    update(device);
    return { el, update };
  }

  function draw() {
    const devices = ctx.hall.ofKind(...kinds);
    cards = new Map(devices.map((d) => [d.id, card(d)]));
    fill(grid, devices.length ? [...cards.values()].map((c) => c.el) : h("p", { class: "empty" }, ctx.t("nodevices")));
  }

  function changed(event) {
    const device = ctx.hall.device(event.source);
    if (device && cards.has(device.id)) cards.get(device.id).update(device);
  }

  // A device back from unavailable may have learnt its controls only now (an Extron
  // asked for its size): draw its card again when they changed.
  async function back(event) {
    changed(event);
    const old = ctx.hall.device(event.source);
    if (!event.data.available || !old || !cards.has(old.id)) return;
    try {
      const fresh = await ctx.api.get(`/devices/${encodeURIComponent(old.id)}`);
      if (JSON.stringify(fresh.controls) === JSON.stringify(old.controls)) return;
      ctx.hall.update(fresh);
      const replaced = card(fresh);
      cards.get(old.id).el.replaceWith(replaced.el);
      cards.set(old.id, replaced);
    } catch (err) {
      ctx.report(err, old.name);
    }
  }

  draw();
  const offs = [ctx.hall.on("snapshot", draw), ctx.hall.on("state", changed), ctx.hall.on("availability", back)];
  return () => offs.forEach((off) => off());
}

/** A button that runs a device action; `pressed` marks the current choice. */
export function actionButton(ctx, id, label, action, args = {}, cls = "") {
  const button = h("button", { type: "button", class: `btn ${cls}` }, label);
  button.addEventListener("click", () => act(ctx, id, action, args, button));
  return button;
}

export function press(button, pressed) {
  button.setAttribute("aria-pressed", pressed ? "true" : "false");
}

/**
 * A KVM's access modes as one row of buttons: the mode the next route takes is picked
 * first (full by default). `mode()` says which; `onPick(mode)` after a touch. `el` is
 * null where there is nothing to pick (a matrix with one mode, or none).
 */
export function modePicker(ctx, modes, onPick = () => {}) {
  let mode = modes.includes("full") ? "full" : null;
  const buttons = modes.map((m) => {
    const b = ctx.h("button", { type: "button", class: "btn seg", dataset: { mode: m } }, ctx.t(`mode.${m}`));
    b.addEventListener("click", () => {
      mode = m;
      buttons.forEach((x) => press(x, x === b));
      onPick(m);
    });
    press(b, m === mode);
    return b;
  });
  const el = modes.length > 1 ? ctx.h("div", { class: "segments", role: "group", "aria-label": ctx.t("mode") }, buttons) : null;
  return { el, mode: () => mode };
}

/** A time, in the page's language and the given zone. */
export function when(ctx, iso, tz) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(ctx.lang === "zh" ? "zh-CN" : "en-GB", {
    weekday: "short",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    timeZone: tz,
  }).format(new Date(typeof iso === "number" ? iso * 1000 : iso));
}
