// The panel: log in with a token, then draw the views the daemon lists for it, kept
// live from the event stream. Everything goes through the public API (docs/panel.md).
//
// The token is kept in sessionStorage: it goes when the tab closes, so a shared
// operator screen does not keep it. A fixed wall panel ticks "keep me signed in" and
// it goes to localStorage instead, surviving the panel's reboots. Either way only
// this origin's own scripts can read it (the CSP lets no other script run).

import { h, fill } from "./lib/dom.js";
import { chooseLang, storeLang, translator, LANGS } from "./lib/i18n.js";
import { createApi, ApiError } from "./lib/api.js";
import { openStream } from "./lib/events.js";
import { createHall } from "./lib/hall.js";
import { notify, act, reportError } from "./lib/ui.js";

const TOKEN = "gridhall.token";
const app = document.getElementById("app");
let lang = chooseLang();
let session = null; // {api, hall, manifest, closeStream, unmount}

function t(key, vars) {
  return translator(lang)(key, vars);
}

function savedToken() {
  return sessionStorage.getItem(TOKEN) || localStorage.getItem(TOKEN);
}

function langButton(onSwitch) {
  const other = LANGS.find((l) => l !== lang);
  return h("button", { type: "button", class: "btn lang", lang: other, onclick: () => {
    lang = other;
    storeLang(lang);
    onSwitch();
  } }, t("lang.switch"));
}

// -- login ------------------------------------------------------------------------
function showLogin(message = "") {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  const token = h("input", { id: "token", type: "password", autocomplete: "off", spellcheck: "false", required: true });
  const remember = h("input", { id: "remember", type: "checkbox" });
  const error = h("p", { class: "login-error", role: "alert" }, message);
  const submit = h("button", { type: "submit", class: "btn primary" }, t("login.submit"));
  const form = h(
    "form",
    { class: "login" },
    h("h1", {}, t("title")),
    h("p", {}, t("login.prompt")),
    h("label", { for: "token" }, t("login.token")),
    token,
    h("label", { class: "check", for: "remember" }, remember, h("span", {}, t("login.remember"))),
    h("p", { class: "hint" }, t("login.rememberHint")),
    submit,
    error,
    h("p", { class: "hint" }, t("login.howto")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    const value = token.value.trim();
    try {
      const manifest = await createApi(value, () => {}).get("/panel");
      (remember.checked ? localStorage : sessionStorage).setItem(TOKEN, value);
      start(value, manifest);
    } catch (err) {
      fill(error, err instanceof ApiError && err.status === 401 ? t("login.bad") : t("login.failed", { error: err.message }));
      submit.disabled = false;
    }
  });
  fill(app, h("main", { class: "login-page" }, h("div", { class: "login-top" }, langButton(() => showLogin(message))), form));
  token.focus();
}

function logout(message = "") {
  sessionStorage.removeItem(TOKEN);
  localStorage.removeItem(TOKEN);
  if (session) {
    session.closeStream();
    session.unmount?.();
    session = null;
  }
  showLogin(message);
}

// -- the signed-in page -----------------------------------------------------------
async function start(token, manifest = null) {
  const api = createApi(token, (message) => logout(message));
  try {
    manifest ??= await api.get("/panel");
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) showLogin(t("login.failed", { error: err.message }));
    return;
  }
  const hall = createHall();
  const modules = new Map(
    await Promise.all(
      manifest.views.map(async (v) => {
        try {
          return [v.id, (await import(v.module)).default];
        } catch (err) {
          return [v.id, { failed: String(err.message || err) }];
        }
      }),
    ),
  );
  session = { api, hall, manifest, modules, status: "connecting" };
  session.closeStream = openStream(token, {
    onEvent: (type, payload) => hall.receive(type, payload),
    onStatus: (status) => {
      session.status = status;
      session.showStatus?.(status);
    },
    onUnauthorized: () => logout(t("login.bad")),
  });
  draw();
}

function draw() {
  const { api, hall, manifest, modules } = session;
  session.unmount?.();
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  const notices = h("div", { class: "notices", "aria-live": "assertive" });
  const ctx = {
    api,
    hall,
    lang,
    t,
    i18n: (dicts) => translator(lang, dicts),
    may: manifest.may,
    who: manifest.who,
    h,
    notify: (kind, title, message) => notify(notices, t, kind, title, message),
  };
  ctx.act = (id, action, args, button) => act(ctx, id, action, args, button);
  ctx.report = (err, what) => reportError(ctx, err, what);

  const views = manifest.views.filter((v) => v.slot === "view");
  const strips = manifest.views.filter((v) => v.slot === "strip");
  const link = h("span", { class: "link", role: "status" });
  session.showStatus = (status) => {
    link.dataset.status = status;
    fill(link, t(`link.${status === "live" ? "live" : status}`));
  };
  session.showStatus(session.status);
  const nav = h(
    "nav",
    { class: "tabs" },
    views.map((v) => h("a", { href: `#/${v.id}`, class: "tab", dataset: { view: v.id } }, v.title[lang] ?? v.title.en)),
  );
  const strip = h("div", { class: "strips" });
  const main = h("main", { class: "view", tabindex: "-1" });
  fill(
    app,
    h(
      "div",
      { class: "shell" },
      h(
        "header",
        { class: "top" },
        h("h1", {}, t("title")),
        link,
        h("span", { class: "who" }, `${manifest.who.name} · ${manifest.who.role}`),
        langButton(draw),
        h("button", { type: "button", class: "btn", onclick: () => logout() }, t("logout")),
      ),
      manifest.may.operate ? null : h("p", { class: "readonly" }, t("readonly")),
      strip,
      nav,
      main,
      notices,
    ),
  );

  const cleanups = [];
  function mountInto(el, view) {
    const module = modules.get(view.id);
    el.dataset.view = view.id;
    if (!module || module.failed) {
      fill(el, h("p", { class: "device-error" }, t("view.failed", { error: module?.failed ?? "?" })));
      return () => {};
    }
    try {
      return module.mount(el, ctx) || (() => {});
    } catch (err) {
      fill(el, h("p", { class: "device-error" }, t("view.failed", { error: err.message })));
      return () => {};
    }
  }
  for (const view of strips) {
    const el = h("section", { class: "strip" });
    strip.append(el);
    cleanups.push(mountInto(el, view));
  }

  let unmountView = () => {};
  function route() {
    const id = location.hash.replace(/^#\//, "");
    const view = views.find((v) => v.id === id) ?? views[0];
    if (!view) return;
    unmountView();
    fill(main);
    for (const a of nav.children) a.setAttribute("aria-current", a.dataset.view === view.id ? "page" : "false");
    unmountView = mountInto(main, view);
  }
  window.addEventListener("hashchange", route);
  route();
  session.unmount = () => {
    window.removeEventListener("hashchange", route);
    unmountView();
    cleanups.forEach((c) => c());
  };
}

const saved = savedToken();
if (saved) start(saved);
else showLogin();
