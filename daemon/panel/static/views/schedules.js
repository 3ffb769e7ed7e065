// Schedules: what each does, on which days, its next runs, and what holds it: an
// operator's override until the group's next run, a run owed to a device that was down.

import { h, fill } from "../lib/dom.js";
import { when } from "../lib/ui.js";

const REFRESH_MS = 60000; // next runs move on with the clock

export default {
  mount(root, ctx) {
    const { t } = ctx;
    const list = h("div", { class: "cards schedules" });
    root.append(list);

    function card(s) {
      const target = s.scene ? t("scene", { id: s.scene }) : `${s.device} ${s.action}`;
      const o = s.override;
      return h(
        "section",
        { class: `card schedule ${s.state}`, dataset: { schedule: s.id } },
        h("header", {}, h("h2", {}, s.name || s.id), h("span", { class: `badge state ${s.state}` }, t(`sched.${s.state}`))),
        h("p", {}, `${target} · ${t(`days.${s.days}`)} · `, h("code", {}, s.cron), ` · ${s.tz}`),
        s.message ? h("p", { class: "device-error" }, s.message) : null,
        o
          ? h(
              "p",
              { class: "override" },
              o.until
                ? t("override", { by: o.by, action: o.action, until: when(ctx, o.until, s.tz) })
                : t("overrideOpen", { by: o.by, action: o.action }),
            )
          : null,
        s.pending ? h("p", { class: "sched-pending" }, t("pending", { due: when(ctx, s.pending, s.tz) })) : null,
        h("h3", {}, t("next")),
        h("ol", { class: "next-runs" }, s.next_runs.slice(0, 3).map((r) => h("li", {}, when(ctx, r, s.tz)))),
        s.last_run
          ? h("p", { class: "last-run" }, t("lastRun", { at: when(ctx, s.last_run.at, s.tz), result: s.last_run.result }))
          : null,
      );
    }

    async function load() {
      try {
        const schedules = await ctx.api.get("/schedules?runs=3");
        fill(list, schedules.map(card));
      } catch (err) {
        ctx.report(err, "schedules");
      }
    }
    load();
    // A run, an override, an edit: each is a `schedule` event; an operator's action on
    // a scheduled device is what makes an override, and it comes as one too.
    const offs = [ctx.hall.on("schedule", load), ctx.hall.on("snapshot", load)];
    const timer = setInterval(load, REFRESH_MS);
    return () => {
      offs.forEach((off) => off());
      clearInterval(timer);
    };
  },
};
