// Power: each board's channels, its own sequence (the driver switches channels in
// order and reports each), and the hall's sequences (scenes that bring whole devices
// up in order and down in reverse) followed step by step.

import { h, fill } from "../lib/dom.js";
import { deviceCards, actionButton, press } from "../lib/ui.js";
import { followScenes, progressView, runScene } from "../lib/scenes.js";

function boardCard(ctx, device) {
  const { t } = ctx;
  const { channels, sequence } = device.controls;
  const tiles = Array.from({ length: channels }, (_, i) => {
    const n = i + 1;
    const b = h("button", { type: "button", class: "btn tile", dataset: { channel: n } }, String(n));
    b.setAttribute("aria-label", t("channel", { n }));
    b.addEventListener("click", () => {
      const on = ctx.hall.device(device.id).state.channels?.[String(n)] === true;
      ctx.act(device.id, on ? "off" : "on", { channel: n }, b);
    });
    return b;
  });
  const order = sequence.map((n) => h("li", { dataset: { channel: n } }, t("channel", { n })));
  const seqBadge = h("span", { class: "badge sequencing" });
  const body = [
    h("div", { class: "tiles" }, tiles),
    h(
      "div",
      { class: "row wrap" },
      actionButton(ctx, device.id, t("allOn"), "on"),
      actionButton(ctx, device.id, t("allOff"), "off"),
      sequence.length ? actionButton(ctx, device.id, t("sequenceOn"), "sequence_on") : null,
      sequence.length ? actionButton(ctx, device.id, t("sequenceOff"), "sequence_off") : null,
      seqBadge,
    ),
    sequence.length ? h("ol", { class: "sequence" }, order) : null,
  ];
  function update(d) {
    const state = d.state.channels || {};
    tiles.forEach((b, i) => press(b, state[String(i + 1)] === true));
    order.forEach((li) => li.classList.toggle("on", state[li.dataset.channel] === true));
    seqBadge.textContent = d.state.sequencing ? t("sequencing") : "";
  }
  return { body, update };
}

function sequencesSection(ctx, root) {
  const { t } = ctx;
  const list = h("div", { class: "cards" });
  const section = h("section", { class: "sequences" }, h("h2", {}, t("sequences")), list);
  const views = new Map();
  const follow = followScenes(ctx, {
    onList(models) {
      views.clear();
      const bySequence = new Map();
      for (const m of models.filter((m) => m.sequence)) {
        if (!bySequence.has(m.sequence)) bySequence.set(m.sequence, []);
        bySequence.get(m.sequence).push(m);
      }
      section.hidden = bySequence.size === 0;
      fill(
        list,
        [...bySequence].map(([seq, scenes]) =>
          h(
            "section",
            { class: "card sequence-card", dataset: { sequence: seq } },
            h("header", {}, h("h2", {}, seq)),
            // Up before down, as the hall's day goes.
            scenes.sort((a, b) => Number(a.id.endsWith("-down")) - Number(b.id.endsWith("-down"))).map((m) => {
              const p = progressView(ctx);
              views.set(m.id, p);
              p.update(m);
              const run = h("button", { type: "button", class: "btn big", dataset: { scene: m.id } },
                m.id.endsWith("-down") ? t("down") : m.id.endsWith("-up") ? t("up") : m.name);
              run.disabled = !ctx.may.operate;
              run.addEventListener("click", () => runScene(ctx, m.id, run));
              return h("div", { class: "sequence-run" }, run, p.el);
            }),
          ),
        ),
      );
    },
    onChange(m) {
      views.get(m.id)?.update(m);
    },
  });
  root.append(section);
  return follow.off;
}

export default {
  mount(root, ctx) {
    const offCards = deviceCards(ctx, root, ["power"], (d) => boardCard(ctx, d));
    const offSeq = sequencesSection(ctx, root);
    return () => {
      offCards();
      offSeq();
    };
  },
};
