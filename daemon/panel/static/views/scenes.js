// Scenes as large buttons, each with its progress step by step; cancel while it runs.

import { h, fill } from "../lib/dom.js";
import { followScenes, progressView, runScene, cancelScene } from "../lib/scenes.js";

export default {
  mount(root, ctx) {
    const { t } = ctx;
    const grid = h("div", { class: "cards scenes" });
    root.append(grid);
    const tiles = new Map();

    function tile(m) {
      const p = progressView(ctx);
      const run = h("button", { type: "button", class: "btn scene-button", dataset: { scene: m.id } }, m.name);
      const cancel = h("button", { type: "button", class: "btn" }, t("cancel"));
      run.disabled = cancel.disabled = !ctx.may.operate;
      run.addEventListener("click", () => runScene(ctx, m.id, run));
      cancel.addEventListener("click", () => cancelScene(ctx, m.id, cancel));
      const el = h("section", { class: "card scene", dataset: { scene: m.id } }, run, p.el, h("div", { class: "row" }, cancel));
      const update = (model) => {
        p.update(model);
        cancel.hidden = model.status !== "running";
        el.dataset.status = model.status ?? "never";
      };
      update(m);
      return { el, update };
    }

    const follow = followScenes(ctx, {
      onList(models) {
        tiles.clear();
        for (const m of models) tiles.set(m.id, tile(m));
        fill(grid, [...tiles.values()].map((x) => x.el));
      },
      onChange(m) {
        tiles.get(m.id)?.update(m);
      },
    });
    return follow.off;
  },
};
