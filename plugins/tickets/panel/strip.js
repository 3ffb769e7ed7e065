// The ticket plugin's alert strip, above every tab of the panel (docs/tickets.md,
// "Reminders, supervision and the hall"): the open alerts, most severe first and
// newest first within a kind: escalated (with the level reached), overdue, unanswered
// whistles, near their deadline. Seeded from the overdue board (and the open whistles),
// then live from the `tickets.*` events; a ticket that is done, or given a new deadline,
// leaves the strip until the watcher speaks of it again, a whistle once answered or
// closed. A touch opens the ticket's card (read only).
// What it needs of the page comes in `ctx` (docs/panel.md); it imports nothing.

const STRINGS = {
  en: {
    title: "Ticket alerts",
    none: "No open alerts",
    "kind.reminder": "Near deadline",
    "kind.overdue": "Overdue",
    "kind.escalated": "Escalated",
    "kind.whistle_unanswered": "Whistle unanswered",
    "level.community": "community",
    "level.street": "street",
    "level.district": "district",
    ticket: "Ticket {id}",
    whistle: "Whistle {id}",
    due: "due {when}",
    since: "since {when}",
    major: "major",
    close: "Close",
    loading: "Loading…",
    "f.state": "State",
    "f.tier": "Tier",
    "f.channel": "Channel",
    "f.created_at": "Reported",
    "f.due_at": "Deadline",
    "f.level": "Supervised by",
    "f.department": "Department",
    "f.handler": "Handler",
    "f.grid": "Grid",
    "f.address": "Address",
    "f.description": "Description",
    history: "History",
  },
  zh: {
    title: "事件预警",
    none: "暂无预警",
    "kind.reminder": "临期",
    "kind.overdue": "超期",
    "kind.escalated": "升级督办",
    "kind.whistle_unanswered": "吹哨未报到",
    "level.community": "社区",
    "level.street": "街道",
    "level.district": "区",
    ticket: "事件 {id}",
    whistle: "哨 {id}",
    due: "{when} 到期",
    since: "{when} 起超期",
    major: "重大",
    close: "关闭",
    loading: "加载中…",
    "f.state": "状态",
    "f.tier": "分级",
    "f.channel": "来源",
    "f.created_at": "上报时间",
    "f.due_at": "办结时限",
    "f.level": "督办层级",
    "f.department": "责任部门",
    "f.handler": "处置人",
    "f.grid": "网格",
    "f.address": "地址",
    "f.description": "描述",
    history: "处置记录",
  },
};
// The loop's states and tiers in Chinese (docs/tickets.md); English shows the names.
const ZH_NAMES = {
  collected: "已采集", registered: "已立案", dispatched: "已派遣", handling: "处置中",
  reported: "已反馈", closed: "已结案", evaluated: "已评价", duplicate: "重复",
  not_ours: "非本辖区", invalid: "无效", simple: "简易", coordination: "协调", hard: "疑难",
};
const KINDS = ["reminder", "whistle_unanswered", "overdue", "escalated"]; // least severe first
const LEVELS = ["community", "street", "district"];
const DONE = new Set(["closed", "evaluated", "duplicate", "not_ours", "invalid"]);
// Open tickets past their deadline or reminded of it: a reminder comes at most a share
// of the time given before the deadline, well within the board's widest window.
const BOARD = "/tickets/overdue?within_h=744&limit=200";

const keyOf = (a) => (a.whistle !== null && a.whistle !== undefined ? `w${a.whistle}` : `t${a.ticket}`);
const rank = (a) => [KINDS.indexOf(a.kind), LEVELS.indexOf(a.level), a.at];

/** Most severe first (kind, then level), newest first within them. */
function compare(a, b) {
  const [x, y] = [rank(a), rank(b)];
  return y[0] - x[0] || y[1] - x[1] || y[2] - x[2];
}

/** The alert an overdue board's row stands for, as the watcher said it; null while none
 * is owed yet (due within the window, not reminded). */
function fromBoard(row) {
  const base = { ticket: row.id, whistle: null, level: row.level, category: row.category };
  Object.assign(base, { due_at: row.due_at, major: row.major });
  if (row.overdue_s > 0) {
    return { ...base, kind: row.escalation >= 2 ? "escalated" : "overdue", at: row.due_at };
  }
  if (row.reminded_at !== null) return { ...base, kind: "reminder", level: null, at: row.reminded_at };
  return null;
}

/** The alert an open whistle stands for: one that went unanswered at least once (gone
 * up a level, or at the top and escalated); null for one still within its time. */
function fromWhistle(w) {
  if (!w.escalation && w.state !== "escalated") return null;
  // Its `report_by` is the new level's deadline, not the one missed: the time shown is
  // when it was blown.
  return { kind: "whistle_unanswered", level: w.level, ticket: w.ticket, whistle: w.id, at: w.blown_at };
}

const isWhistle = (a) => a.whistle !== null && a.whistle !== undefined;
// Open whistles (docs/tickets.md, "Whistles"); where the API is not there (a 404: an
// older plugin), whistles come from the events only.
const WHISTLES = ["/tickets/whistles?state=open&limit=200", "/tickets/whistles?state=escalated&limit=200"];
const FIELDS = ["state", "tier", "channel", "created_at", "due_at", "level", "department", "handler", "grid"];

export default {
  mount(el, ctx) {
    const { h } = ctx;
    const t = ctx.i18n(STRINGS);
    const named = (v) => (ctx.lang === "zh" && ZH_NAMES[v]) || v;
    const time = new Intl.DateTimeFormat(ctx.lang === "zh" ? "zh-CN" : "en-GB", {
      month: "short",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
    });
    const at = (epoch) => (epoch ? time.format(new Date(epoch * 1000)) : "");
    const alerts = new Map(); // key -> alert
    const categories = new Map(); // code -> name
    const category = (code) => categories.get(code) ?? code;
    let closed = false;

    el.append(h("link", { rel: "stylesheet", href: new URL("strip.css", import.meta.url).href }));
    const count = h("span", { class: "badge" });
    const list = h("ul", { class: "ticket-alert-list" });
    const card = h("dialog", { class: "ticket-card" });
    el.append(h("div", { class: "ticket-alerts" }, h("strong", {}, t("title")), count, list), card);

    const label = (a) => (a.level ? `${t(`kind.${a.kind}`)} · ${t(`level.${a.level}`)}` : t(`kind.${a.kind}`));

    function alertButton(a) {
      const what = isWhistle(a) ? t("whistle", { id: a.whistle }) : t("ticket", { id: a.ticket });
      let due = at(a.at);
      if (a.kind === "reminder") due = t("due", { when: at(a.due_at) });
      else if (a.due_at) due = t("since", { when: at(a.due_at) });
      const dataset = { kind: a.kind, level: a.level ?? "", ticket: a.ticket ?? "", whistle: a.whistle ?? "" };
      const b = h(
        "button",
        { type: "button", class: `ticket-alert${a.major ? " major" : ""}`, title: a.message ?? "", dataset },
        h("span", { class: "kind" }, label(a)),
        h(
          "span",
          { class: "what" },
          what,
          a.category ? ` ${category(a.category)}` : "",
          a.major ? ` (${t("major")})` : "",
        ),
        h("span", { class: "when" }, due),
      );
      b.addEventListener("click", () => open(a));
      return h("li", {}, b);
    }

    function draw() {
      const shown = [...alerts.values()].sort(compare);
      count.textContent = String(shown.length);
      list.replaceChildren(...(shown.length ? shown.map(alertButton) : [h("li", { class: "none" }, t("none"))]));
    }

    function take(alert) {
      const old = alerts.get(keyOf(alert));
      if (!old || compare(alert, old) <= 0) alerts.set(keyOf(alert), alert);
    }

    // A ticket done leaves the strip; one with a new deadline (reopened, registered
    // with another category) loses its deadline alert until the watcher says again.
    const changedWhileLoading = new Set();
    function changed(ticket) {
      changedWhileLoading.add(ticket.id);
      for (const [key, a] of alerts) {
        if (a.ticket !== ticket.id) continue;
        if (DONE.has(ticket.state) || (!isWhistle(a) && a.due_at !== ticket.due_at)) alerts.delete(key);
      }
    }

    const absent = (err) => (err.status === 404 ? null : Promise.reject(err));

    async function seed() {
      changedWhileLoading.clear();
      try {
        const names = categories.size ? null : ctx.api.get("/tickets/categories");
        const whistles = Promise.all(WHISTLES.map((path) => ctx.api.get(path).catch(absent)));
        const [board, cats, open] = await Promise.all([ctx.api.get(BOARD), names, whistles]);
        if (closed) return;
        for (const c of cats?.categories ?? []) categories.set(c.code, c.name);
        const known = open.every(Boolean); // else keep what the events said
        for (const [key, a] of [...alerts]) if (!isWhistle(a) || known) alerts.delete(key);
        for (const row of board.tickets) {
          const a = fromBoard(row);
          if (a && !changedWhileLoading.has(row.id)) take(a);
        }
        for (const w of known ? open.flatMap((found) => found.whistles) : []) {
          const a = fromWhistle(w);
          if (a) take(a);
        }
        draw();
      } catch (err) {
        ctx.report(err, t("title"));
      }
    }

    /** The ticket's card, read only: its fields, the alert, its last steps. */
    function ticketCard(ticket, a, close) {
      const value = (f) => {
        if (f.endsWith("_at")) return at(ticket[f]);
        if (f === "level") return t(`level.${ticket.level}`);
        return named(String(ticket[f]));
      };
      const given = [...FIELDS, "address", "description"].filter((f) => ![null, undefined, ""].includes(ticket[f]));
      const steps = ticket.history.slice(-8);
      return [
        h("h2", {}, `${t("ticket", { id: ticket.id })} · ${category(ticket.category)}`, ticket.major ? ` (${t("major")})` : ""),
        h("p", { class: "kind" }, label(a)),
        h("dl", {}, given.flatMap((f) => [h("dt", {}, t(`f.${f}`)), h("dd", { dataset: { field: f } }, value(f))])),
        h("h3", {}, t("history")),
        h("ol", { class: "history" }, steps.map((e) => h("li", {}, `${at(e.at)} ${e.actor}: ${e.transition} → ${named(e.to)}`))),
        close,
      ];
    }

    async function open(a) {
      const close = h("button", { type: "button", class: "btn close" }, t("close"));
      close.addEventListener("click", () => card.close());
      card.replaceChildren(h("p", {}, a.message ?? t("loading")), close);
      card.showModal();
      if (a.ticket === null || a.ticket === undefined) return;
      try {
        const ticket = await ctx.api.get(`/tickets/${encodeURIComponent(a.ticket)}`);
        card.replaceChildren(...ticketCard(ticket, a, close));
      } catch (err) {
        card.close();
        ctx.report(err, t("ticket", { id: a.ticket }));
      }
    }

    const off = [
      ctx.hall.on("tickets.", (event) => {
        const name = event.type.slice("tickets.".length);
        if (name === "changed") changed(event.data.ticket);
        else if (KINDS.includes(name)) take({ ...event.data, kind: name });
        else if (name === "whistle" && ["answered", "closed"].includes(event.data.what)) {
          const w = event.data.whistle;
          alerts.delete(`w${typeof w === "object" ? w.id : w}`); // reported in, or ended
        } else return;
        draw();
      }),
      ctx.hall.on("snapshot", seed), // a reconnect: what was missed is on the board
    ];
    draw();
    if (ctx.hall.devices.size) seed(); // else the stream's first snapshot, soon, seeds it
    return () => {
      closed = true;
      off.forEach((f) => f());
      if (card.open) card.close();
    };
  },
};
