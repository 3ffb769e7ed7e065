// Scenes as the page follows them: the list from GET /scenes, then each run step by
// step from the scene.* events (scene.started, scene.step_started, .step_done,
// .step_failed, .step_skipped, .step_cancelled, then scene.done, .failed, .cancelled).

import { h, fill } from "./dom.js";
import { attempt } from "./ui.js";

const ENDS = new Set(["done", "failed", "cancelled"]);

function describeStep(t, step) {
  if (step.parallel) return t("parallel", { n: step.parallel.length });
  if (step.device) {
    const args = Object.entries(step.args || {}).map(([k, v]) => ` ${k}=${v}`).join("");
    return `${step.device} ${step.action ?? ""}${args}`.trim();
  }
  if (step.wait_ms) return t("wait", { s: step.wait_ms / 1000 });
  return "";
}

function planned(t, steps, prefix = "") {
  return steps.flatMap((s, i) => [
    { path: `${prefix}${i + 1}`, what: describeStep(t, s), status: "pending" },
    ...(s.parallel ? planned(t, s.parallel, `${prefix}${i + 1}.`) : []),
  ]);
}

/** The model of one scene: its steps and its running or last run. */
function model(t, scene) {
  const run = scene.last_run;
  const steps = run?.steps?.length ? run.steps.map((s) => ({ ...s })) : planned(t, scene.step);
  return {
    id: scene.id,
    name: scene.name || scene.id,
    sequence: scene.sequence,
    status: scene.running ? "running" : run?.status ?? null,
    error: run?.error ?? null,
    steps,
  };
}

export function progress(m) {
  const top = m.steps.filter((s) => !s.path.includes("."));
  const done = top.filter((s) => !["pending", "running"].includes(s.status)).length;
  return { done, total: top.length };
}

/**
 * Follow every scene; `onChange(model)` after each change, `onList(models)` when the
 * list is (re)loaded. Returns {models, off}.
 */
export function followScenes(ctx, { onList, onChange }) {
  const models = new Map();
  async function load() {
    try {
      const scenes = await ctx.api.get("/scenes");
      models.clear();
      for (const s of scenes) models.set(s.id, model(ctx.t, s));
      onList([...models.values()]);
    } catch (err) {
      ctx.report(err, "scenes");
    }
  }
  function event(payload, type) {
    const m = models.get(payload.source);
    if (!m) return;
    const name = type.slice("scene.".length);
    const data = payload.data;
    if (name === "started") {
      m.status = "running";
      m.error = null;
      m.steps.forEach((s) => (s.status = "pending"));
    } else if (name.startsWith("step_")) {
      let step = m.steps.find((s) => s.path === data.step);
      if (!step) m.steps.push((step = { path: data.step, what: data.what }));
      step.status = name === "step_started" ? "running" : name.slice("step_".length);
      if (data.error) step.error = data.error;
    } else if (ENDS.has(name)) {
      m.status = name;
      m.error = data.error ?? null;
    }
    onChange(m);
  }
  load();
  const offs = [ctx.hall.on("scene.", event), ctx.hall.on("snapshot", load)];
  return { models, off: () => offs.forEach((off) => off()) };
}

/** Run a scene; a refusal (409: running already, a sequence on its devices) shows why. */
export function runScene(ctx, id, button) {
  return attempt(ctx, id, button, () => ctx.api.post(`/scenes/${encodeURIComponent(id)}/run`));
}

export function cancelScene(ctx, id, button) {
  return attempt(ctx, id, button, () => ctx.api.post(`/scenes/${encodeURIComponent(id)}/cancel`));
}

/** A scene's progress: a bar, its status, and its steps one by one. */
export function progressView(ctx) {
  const { t } = ctx;
  const bar = h("progress", { max: "1", value: "0" });
  const status = h("p", { class: "scene-status" });
  const list = h("ol", { class: "steps" });
  const el = h("div", { class: "progress" }, bar, status, list);
  function update(m) {
    const { done, total } = progress(m);
    bar.max = Math.max(total, 1);
    bar.value = m.status === "done" ? bar.max : done;
    el.dataset.status = m.status ?? "never";
    status.textContent =
      m.status === "running"
        ? t("scene.running", { done: Math.min(done + 1, total), total })
        : m.status === "failed"
          ? t("scene.failed", { error: m.error ?? "" })
          : m.status
            ? t(`scene.${m.status}`)
            : t("scene.never");
    fill(
      list,
      m.steps.map((s) =>
        h(
          "li",
          { class: `step ${s.status}`, dataset: { path: s.path, status: s.status } },
          h("span", { class: "what" }, `${s.path}. ${s.what}`),
          h("span", { class: "step-status" }, t(`step.${s.status}`)),
          s.error ? h("span", { class: "step-error" }, s.error) : null,
        ),
      ),
    );
  }
  return { el, update };
}
