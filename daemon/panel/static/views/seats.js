// The operator seats and the wall (docs/seats.md). Each seat: who is logged in (log in,
// log out: the operator's own layout comes back), its consoles with what each shows,
// one touch to route a console to one of the seat's computers in the mode picked
// first, its layouts and the operator's own (one touch to recall, one to save the
// consoles as they are), pushing one of its computers to the wall or another seat, and
// who is watching its computers. Live from the seats.* events; the rights are the
// daemon's: a route outside them is refused (403) with the reason, never hidden.

import { h, fill } from "../lib/dom.js";
import { press, when, modePicker } from "../lib/ui.js";
import { followSeats } from "../lib/seats.js";

function button(cls, label, onClick, dataset = {}) {
  const b = h("button", { type: "button", class: `btn ${cls}`, dataset }, label);
  b.addEventListener("click", () => onClick(b));
  return b;
}

/** What an output shows, in words: a computer and its mode, dark, or unknown. */
function shown(ctx, out, names) {
  const { t } = ctx;
  if (!out.known) return t("unknown");
  if (!out.input) return t("seat.dark");
  const what = names.get(out.computer) ?? `${t("input")} ${out.input}`;
  return out.mode ? `${what} · ${t(`mode.${out.mode}`)}` : what;
}

/** One console: what it shows, a button per computer of the seat, and dark. */
function consoleBox(ctx, seat, c, route) {
  const { t } = ctx;
  const shows = h("span", { class: "shows" });
  const buttons = seat.computers.map((computer) =>
    button(
      "computer",
      [computer.name, computer.secure ? h("span", { class: "lock" }, t("seat.secure")) : null],
      (b) => route(c.console, computer.id, b),
      { computer: computer.id },
    ),
  );
  const dark = button("computer dark", t("seat.dark"), (b) => route(c.console, null, b), { computer: "" });
  const screens = c.screens.length && c.screens.join() !== c.name ? c.screens.join(" · ") : null;
  const el = h(
    "div",
    { class: "console", dataset: { console: c.console } },
    h("div", { class: "console-head" }, h("strong", {}, c.name), screens ? h("span", { class: "screens" }, screens) : null),
    shows,
    h("div", { class: "computers" }, buttons, dark),
  );

  function update(out, computers, mode) {
    shows.textContent = shown(ctx, out, new Map(computers.map((x) => [x.id, x.name])));
    shows.dataset.known = String(out.known);
    for (const b of buttons) {
      press(b, out.known && out.computer === b.dataset.computer);
      // Outside this token's rights in the mode picked: marked, still pressable (the
      // daemon answers why).
      const rights = computers.find((x) => x.id === b.dataset.computer)?.modes;
      b.classList.toggle("outside", Boolean(rights) && !rights.includes(mode ?? "full"));
    }
    press(dark, out.known && out.input === 0);
  }
  return { console: c.console, el, update };
}

/** The seat's layouts and this token's own: recall with one touch, save the consoles. */
function layoutsPart(ctx, id, seats) {
  const { t } = ctx;
  const seatRow = h("div", { class: "row wrap layouts", dataset: { owner: "seat" } });
  const mineRow = h("div", { class: "row wrap layouts", dataset: { owner: "mine" } });
  let drawn = "";
  let seatLayouts = [];
  let mine = [];
  const layoutButton = (layout, isMine) =>
    button(
      "layout",
      isMine && layout.id === "profile" ? t("seat.profile") : layout.name,
      (b) => seats.recall(id, layout.id, isMine, b),
      { layout: layout.id },
    );
  const name = h("input", {
    type: "text",
    class: "text",
    maxlength: "100",
    "aria-label": t("seat.layoutName"),
    placeholder: t("seat.layoutName"),
  });
  const save = (isMine, b) => {
    const typed = name.value.trim();
    if (!typed) return ctx.notify("error", t("seat.nameNeeded"), "");
    return seats.save(id, typed, isMine, isMine ? mine : seatLayouts, b);
  };
  const saveMine = button("save-mine", t("seat.saveMine"), (b) => save(true, b));
  const saveSeat = ctx.may.edit ? button("save-seat", t("seat.saveSeat"), (b) => save(false, b)) : null;
  const el = [
    h("h3", {}, t("seat.layouts")),
    seatRow,
    h("h3", {}, t("seat.mine")),
    mineRow,
    h("div", { class: "row wrap save" }, name, saveMine, saveSeat),
  ];

  return {
    el,
    /** The seat's layouts (from its state), the one the consoles match pressed. */
    update(layouts, matched) {
      seatLayouts = layouts;
      if (JSON.stringify(layouts) !== drawn) {
        drawn = JSON.stringify(layouts);
        fill(seatRow, layouts.map((l) => layoutButton(l, false)));
      }
      for (const b of seatRow.children) press(b, b.dataset.layout === matched);
    },
    /** This token's own, as `GET /seats/{id}/layouts` said. */
    mine(layouts) {
      mine = layouts;
      fill(mineRow, mine.length ? mine.map((l) => layoutButton(l, true)) : h("span", { class: "empty" }, t("seat.noMine")));
    },
  };
}

/** Push one of the seat's computers to an output of another seat or a wall, in the
 * modes this token may share it in. */
function pushPart(ctx, seat, seats, targets, computers) {
  const { t } = ctx;
  if (!targets.length) return { el: null };
  const computer = h(
    "select",
    { class: "push-computer", "aria-label": t("seat.computer") },
    seat.computers.map((c) => h("option", { value: c.id }, c.name)),
  );
  const target = h(
    "select",
    { class: "push-target", "aria-label": t("seat.target") },
    targets.map((place) =>
      h(
        "optgroup",
        { label: place.name },
        place.outputs.map((o) => h("option", { value: `${place.id}:${o.output}` }, `${place.name} · ${o.name}`)),
      ),
    ),
  );
  const mode = h("select", { class: "push-mode", "aria-label": t("mode") });
  const modes = () => {
    const share = computers().find((c) => c.id === computer.value)?.share;
    fill(mode, (share?.length ? share : ["video"]).map((m) => h("option", { value: m }, t(`mode.${m}`))));
  };
  computer.addEventListener("change", modes);
  modes();
  const push = button("push", t("seat.push"), (b) => {
    const [to, output] = target.value.split(":");
    const body = { computer: computer.value, target: to, output: Number(output), mode: mode.value };
    seats.push(seat.id, body, b);
  });
  return { el: [h("h3", {}, t("seat.pushTitle")), h("div", { class: "row wrap push-row" }, computer, target, mode, push)] };
}

/** One output watching a computer of the seat: where it is, who sits there, who pushed. */
function watcherItem(ctx, w, names, targets) {
  const { t } = ctx;
  const place = targets.find((p) => p.id === (w.seat ?? w.wall));
  const output = place?.outputs.find((o) => o.output === w.output)?.name ?? w.output;
  const where = place ? `${place.name} · ${output}` : `${t("output")} ${w.output}`;
  return h(
    "li",
    { dataset: { output: w.output, computer: w.computer ?? "" } },
    h("strong", {}, names.get(w.computer) ?? `${t("input")} ${w.input}`),
    ` → ${where}${w.operator ? ` (${w.operator})` : ""}`,
    w.mode ? ` · ${t(`mode.${w.mode}`)}` : "",
    w.pushed_by ? h("span", { class: "pushed" }, ` · ${t("seat.pushedBy", { name: w.pushed_by })}`) : null,
  );
}

function seatCard(ctx, seat, seats, targets) {
  const { t } = ctx;
  const id = seat.id;
  const names = new Map(seat.computers.map((c) => [c.id, c.name]));
  let current = seat;

  const seated = h("span", { class: "seated" });
  const login = button("seat-login", t("seat.login", { name: ctx.who.name }), (b) => seats.login(id, b));
  const logout = button("seat-logout", "", (b) => seats.logout(id, b));
  const picker = modePicker(ctx, ctx.hall.device(seat.matrix)?.controls?.modes ?? [], () => update(current));
  const route = (console, computer, b) => seats.route(id, console, computer, picker.mode() ?? undefined, b);
  const consoles = seat.consoles.map((c) => consoleBox(ctx, seat, c, route));
  const layouts = layoutsPart(ctx, id, seats);
  const push = pushPart(ctx, seat, seats, targets, () => current.computers);
  const watchers = h("ul", { class: "watchers" });
  const status = h("span", { class: "status" });
  const controls = h(
    "fieldset",
    { class: "controls" },
    h("div", { class: "row wrap seat-operator" }, seated, login, logout),
    picker.el,
    h("div", { class: "consoles" }, consoles.map((c) => c.el)),
    layouts.el,
    push.el,
  );
  const el = h(
    "section",
    { class: "card seat", dataset: { seat: id } },
    h("header", {}, h("h2", {}, seat.name), status),
    controls,
    h("h3", {}, t("seat.watchers")),
    watchers,
  );

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
    for (const c of consoles) c.update(s.consoles.find((x) => x.console === c.console), s.computers, picker.mode());
    layouts.update(s.layouts, s.layout);
    fill(
      watchers,
      s.watchers.length
        ? s.watchers.map((w) => watcherItem(ctx, w, names, targets))
        : h("li", { class: "empty" }, t("seat.noWatchers")),
    );
  }

  update(seat);
  return { el, update, layouts: (found) => layouts.mine(found.mine) };
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
        const mode = input ? state.modes?.[String(out.console)] : null;
        out = { known, input, computer: byInput.get(input), mode };
      }
      r.shows.textContent = shown(ctx, out, names);
    }
  }
  update();
  return { el, off: ctx.hall.on("state", (event) => event.source === wall.matrix && update()) };
}

/** Where a seat may push: the other seats' consoles and the walls, on its matrix. */
function places(seats, walls) {
  const outputs = (list) => list.map((o) => ({ output: o.console, name: o.name }));
  return [
    ...seats.map((s) => ({ id: s.id, name: s.name, matrix: s.matrix, outputs: outputs(s.consoles) })),
    ...walls.map((w) => ({ id: w.id, name: w.name, matrix: w.matrix, outputs: outputs(w.outputs) })),
  ];
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
        const all = places(list, wallList);
        const targets = (s) => all.filter((p) => p.matrix === s.matrix && p.id !== s.id);
        cards = new Map(list.map((s) => [s.id, seatCard(ctx, s, seats, targets(s))]));
        const computers = new Map(list.flatMap((s) => s.computers.map((c) => [c.id, c])));
        walls = wallList.map((w) => wallCard(ctx, w, computers));
        const drawn = [...cards.values(), ...walls].map((c) => c.el);
        fill(grid, list.length ? drawn : h("p", { class: "empty" }, ctx.t("seat.none")));
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
