// The operator seats and the wall (docs/seats.md). Each seat: who is logged in (log in,
// log out: the operator's own layout comes back), its consoles with what each shows,
// one touch to route a console to one of the seat's computers in the mode picked
// first, its layouts and the operator's own (one touch to recall, one to save the
// consoles as they are), pushing one of its computers to the wall or another seat, and
// who is watching its computers. Live from the seats.* events; the rights are the
// daemon's: a route outside them is refused (403) with the reason, never hidden.

import { h, fill } from "../lib/dom.js";
import { press, when } from "../lib/ui.js";
import { followSeats } from "../lib/seats.js";

function modesOf(ctx, matrix) {
  return ctx.hall.device(matrix)?.controls?.modes ?? [];
}

/** What an output shows, in words: a computer and its mode, dark, or unknown. */
function shown(ctx, out, names) {
  const { t } = ctx;
  if (!out.known) return t("unknown");
  if (!out.input) return t("seat.dark");
  const what = names.get(out.computer) ?? `${t("input")} ${out.input}`;
  return out.mode ? `${what} · ${t(`mode.${out.mode}`)}` : what;
}

function seatCard(ctx, seat, seats, targets) {
  const { t } = ctx;
  const id = seat.id;
  const names = new Map(seat.computers.map((c) => [c.id, c.name]));
  const modes = modesOf(ctx, seat.matrix);
  let mode = modes.includes("full") ? "full" : null; // the mode the next touch routes with
  let current = seat;

  // -- who sits here ----------------------------------------------------------------
  const seated = h("span", { class: "seated" });
  const login = h("button", { type: "button", class: "btn seat-login" }, t("seat.login", { name: ctx.who.name }));
  const logout = h("button", { type: "button", class: "btn seat-logout" });
  login.addEventListener("click", () => seats.login(id, login));
  logout.addEventListener("click", () => seats.logout(id, logout));

  // -- the mode, then the consoles ----------------------------------------------------
  const modeButtons = modes.map((m) => {
    const b = h("button", { type: "button", class: "btn seg", dataset: { mode: m } }, t(`mode.${m}`));
    b.addEventListener("click", () => {
      mode = m;
      modeButtons.forEach((x) => press(x, x === b));
      update(current);
    });
    press(b, m === mode);
    return b;
  });
  const consoles = seat.consoles.map((c) => {
    const shows = h("span", { class: "shows" });
    const route = (computer, button) => seats.route(id, c.console, computer, mode ?? undefined, button);
    const buttons = seat.computers.map((computer) => {
      const b = h(
        "button",
        { type: "button", class: "btn computer", dataset: { computer: computer.id } },
        computer.name,
        computer.secure ? h("span", { class: "lock" }, t("seat.secure")) : null,
      );
      b.addEventListener("click", () => route(computer.id, b));
      return b;
    });
    const dark = h("button", { type: "button", class: "btn computer dark", dataset: { computer: "" } }, t("seat.dark"));
    dark.addEventListener("click", () => route(null, dark));
    const el = h(
      "div",
      { class: "console", dataset: { console: c.console } },
      h("div", { class: "console-head" }, h("strong", {}, c.name), (c.screens.length && c.screens.join() !== c.name) ? h("span", { class: "screens" }, c.screens.join(" · ")) : null),
      shows,
      h("div", { class: "computers" }, buttons, dark),
    );
    return { console: c.console, el, shows, buttons, dark };
  });

  // -- layouts ----------------------------------------------------------------------
  const seatLayouts = h("div", { class: "row wrap layouts", dataset: { owner: "seat" } });
  const myLayouts = h("div", { class: "row wrap layouts", dataset: { owner: "mine" } });
  let drawnLayouts = "";
  let mine = [];
  const layoutButton = (layout, isMine) => {
    const label = isMine && layout.id === "profile" ? t("seat.profile") : layout.name;
    const b = h("button", { type: "button", class: "btn layout", dataset: { layout: layout.id } }, label);
    b.addEventListener("click", () => seats.recall(id, layout.id, isMine, b));
    return b;
  };
  const layoutName = h("input", { type: "text", class: "text", maxlength: "100", "aria-label": t("seat.layoutName"), placeholder: t("seat.layoutName") });
  const save = (isMine, button) => {
    const name = layoutName.value.trim();
    if (!name) return ctx.notify("error", t("seat.nameNeeded"), "");
    return seats.save(id, name, isMine, isMine ? mine : current.layouts, button);
  };
  const saveMine = h("button", { type: "button", class: "btn save-mine" }, t("seat.saveMine"));
  saveMine.addEventListener("click", () => save(true, saveMine));
  const saveSeat = ctx.may.edit ? h("button", { type: "button", class: "btn save-seat" }, t("seat.saveSeat")) : null;
  saveSeat?.addEventListener("click", () => save(false, saveSeat));

  // -- push ------------------------------------------------------------------------
  const pushComputer = h("select", { class: "push-computer", "aria-label": t("seat.computer") }, seat.computers.map((c) => h("option", { value: c.id }, c.name)));
  const pushTarget = h(
    "select",
    { class: "push-target", "aria-label": t("seat.target") },
    targets.map((place) =>
      h("optgroup", { label: place.name }, place.outputs.map((o) => h("option", { value: `${place.id}:${o.output}` }, `${place.name} · ${o.name}`))),
    ),
  );
  const pushMode = h("select", { class: "push-mode", "aria-label": t("mode") });
  const pushModes = () => {
    const computer = current.computers.find((c) => c.id === pushComputer.value);
    const allowed = computer?.share?.length ? computer.share : ["video"];
    fill(pushMode, allowed.map((m) => h("option", { value: m }, t(`mode.${m}`))));
  };
  pushComputer.addEventListener("change", pushModes);
  const push = h("button", { type: "button", class: "btn push" }, t("seat.push"));
  push.addEventListener("click", () => {
    const [target, output] = pushTarget.value.split(":");
    seats.push(id, { computer: pushComputer.value, target, output: Number(output), mode: pushMode.value }, push);
  });

  const watchers = h("ul", { class: "watchers" });
  const status = h("span", { class: "status" });
  const controls = h(
    "fieldset",
    { class: "controls" },
    h("div", { class: "row wrap seat-operator" }, seated, login, logout),
    modes.length > 1 ? h("div", { class: "segments", role: "group", "aria-label": t("mode") }, modeButtons) : null,
    h("div", { class: "consoles" }, consoles.map((c) => c.el)),
    h("h3", {}, t("seat.layouts")),
    seatLayouts,
    h("h3", {}, t("seat.mine")),
    myLayouts,
    h("div", { class: "row wrap save" }, layoutName, saveMine, saveSeat),
    targets.length ? [h("h3", {}, t("seat.pushTitle")), h("div", { class: "row wrap push-row" }, pushComputer, pushTarget, pushMode, push)] : null,
  );
  const el = h(
    "section",
    { class: "card seat", dataset: { seat: id } },
    h("header", {}, h("h2", {}, seat.name), status),
    controls,
    h("h3", {}, t("seat.watchers")),
    watchers,
  );

  function place(w) {
    if (w.seat) {
      const other = targets.find((p) => p.id === w.seat);
      const out = other?.outputs.find((o) => o.output === w.output);
      return `${other?.name ?? w.seat} · ${out?.name ?? w.output}${w.operator ? ` (${w.operator})` : ""}`;
    }
    if (w.wall) {
      const wall = targets.find((p) => p.id === w.wall);
      return `${wall?.name ?? w.wall} · ${wall?.outputs.find((o) => o.output === w.output)?.name ?? w.output}`;
    }
    return `${t("output")} ${w.output}`;
  }

  function update(s) {
    current = s;
    el.classList.toggle("unavailable", !s.available);
    el.dataset.layout = s.layout ?? "";
    controls.disabled = !s.available || !ctx.may.operate;
    fill(status, s.available ? "" : t("unavailable"));
    const op = s.operator;
    fill(seated, op ? t("seat.seated", { name: op.name, since: when(ctx, op.since) }) : t("seat.nobody"));
    seated.dataset.operator = op?.name ?? "";
    login.hidden = op?.name === ctx.who.name;
    logout.hidden = !op;
    fill(logout, op ? t("seat.logout", { name: op.name }) : "");
    for (const c of consoles) {
      const out = s.consoles.find((x) => x.console === c.console);
      c.shows.textContent = shown(ctx, out, names);
      c.shows.dataset.known = String(out.known);
      for (const b of c.buttons) {
        press(b, out.known && out.computer === b.dataset.computer);
        // Outside this token's rights in the mode picked: marked, still pressable (the
        // daemon answers why).
        const computer = s.computers.find((x) => x.id === b.dataset.computer);
        b.classList.toggle("outside", Boolean(computer?.modes) && !computer.modes.includes(mode ?? "full"));
      }
      press(c.dark, out.known && out.input === 0);
    }
    const layouts = JSON.stringify(s.layouts);
    if (layouts !== drawnLayouts) {
      drawnLayouts = layouts;
      fill(seatLayouts, s.layouts.map((l) => layoutButton(l, false)));
    }
    for (const b of seatLayouts.children) press(b, b.dataset.layout === s.layout);
    fill(
      watchers,
      s.watchers.length
        ? s.watchers.map((w) =>
            h(
              "li",
              { dataset: { output: w.output, computer: w.computer ?? "" } },
              h("strong", {}, names.get(w.computer) ?? `${t("input")} ${w.input}`),
              ` → ${place(w)}`,
              w.mode ? ` · ${t(`mode.${w.mode}`)}` : "",
              w.pushed_by ? h("span", { class: "pushed" }, ` · ${t("seat.pushedBy", { name: w.pushed_by })}`) : null,
            ),
          )
        : h("li", { class: "empty" }, t("seat.noWatchers")),
    );
  }

  function layouts(found) {
    mine = found.mine;
    fill(myLayouts, mine.length ? mine.map((l) => layoutButton(l, true)) : h("span", { class: "empty" }, t("seat.noMine")));
  }

  pushModes();
  update(seat);
  return { el, update, layouts };
}

/** A wall: what each of its outputs shows, live from its matrix's state. `computers`:
 * every seat's, by id. */
function wallCard(ctx, wall, computers) {
  const names = new Map([...computers].map(([id, c]) => [id, c.name]));
  const byInput = new Map([...computers].map(([id, c]) => [c.input, id]));
  const rows = wall.outputs.map((o) => {
    const shows = h("span", { class: "shows" });
    return { output: o, shows, el: h("li", { dataset: { output: o.console } }, h("strong", {}, o.name), " ", shows) };
  });
  const el = h(
    "section",
    { class: "card wall", dataset: { wall: wall.id } },
    h("header", {}, h("h2", {}, wall.name)),
    h("ul", { class: "wall-outputs" }, rows.map((r) => r.el)),
  );
  function update() {
    const state = ctx.hall.device(wall.matrix)?.state;
    for (const r of rows) {
      let out = r.output; // as GET /seats said, until the stream says more
      if (state?.routes) {
        const input = state.routes[String(out.console)];
        const known = input !== null && input !== undefined;
        out = { known, input, computer: byInput.get(input), mode: input ? state.modes?.[String(out.console)] : null };
      }
      r.shows.textContent = shown(ctx, out, names);
    }
  }
  update();
  return { el, off: ctx.hall.on("state", (event) => event.source === wall.matrix && update()) };
}

export default {
  mount(root, ctx) {
    const grid = h("div", { class: "cards seats" });
    root.append(grid);
    let cards = new Map();
    let walls = [];

    const seats = followSeats(ctx, {
      onList(list, wallList) {
        walls.forEach((w) => w.off());
        const computers = new Map(list.flatMap((s) => s.computers.map((c) => [c.id, c])));
        const places = [
          ...list.map((s) => ({ id: s.id, name: s.name, matrix: s.matrix, outputs: s.consoles.map((c) => ({ output: c.console, name: c.name })) })),
          ...wallList.map((w) => ({ id: w.id, name: w.name, matrix: w.matrix, outputs: w.outputs.map((o) => ({ output: o.console, name: o.name })) })),
        ];
        cards = new Map(list.map((s) => [s.id, seatCard(ctx, s, seats, places.filter((p) => p.matrix === s.matrix && p.id !== s.id))]));
        walls = wallList.map((w) => wallCard(ctx, w, computers));
        fill(grid, list.length ? [...cards.values(), ...walls].map((c) => c.el) : h("p", { class: "empty" }, ctx.t("seat.none")));
      },
      onSeat(seat) {
        cards.get(seat.id)?.update(seat);
      },
      onLayouts(id, found) {
        cards.get(id)?.layouts(found);
      },
    });
    return () => {
      seats.off();
      walls.forEach((w) => w.off());
    };
  },
};
