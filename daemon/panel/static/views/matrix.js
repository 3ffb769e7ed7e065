// The matrices: outputs by inputs, one touch to route. A KVM also shows each
// console's access mode and lets the operator pick the mode the next route takes.

import { deviceCards, act, press, modePicker } from "../lib/ui.js";

function matrixCard(ctx, device) {
  const { h, t } = ctx;
  const { inputs, outputs, modes } = device.controls;
  const picker = modePicker(ctx, modes); // the mode the next touch routes with
  const cells = new Map(); // "o:i" -> button
  const modeCells = new Map(); // output -> cell

  const head = h(
    "tr",
    {},
    h("th", { scope: "col", class: "corner" }, `${t("output")} \\ ${t("input")}`),
    h("th", { scope: "col" }, t("untie")),
    Array.from({ length: inputs }, (_, i) => h("th", { scope: "col" }, String(i + 1))),
  );
  const rows = Array.from({ length: outputs }, (_, o) => {
    const output = o + 1;
    const modeCell = h("span", { class: "route-mode" });
    modeCells.set(output, modeCell);
    const buttons = Array.from({ length: inputs + 1 }, (_, input) => {
      const label = input === 0 ? "×" : String(input);
      const b = h(
        "button",
        {
          type: "button",
          class: `cell${input === 0 ? " untie" : ""}`,
          "aria-label": input === 0 ? `${t("untie")} ${t("output")} ${output}` : t("matrix.routeTo", { input, output }),
          dataset: { output, input },
        },
        label,
      );
      b.addEventListener("click", () => {
        const args = { input, output };
        if (picker.mode() && input !== 0 && modes.length) args.mode = picker.mode();
        act(ctx, device.id, "route", args, b);
      });
      cells.set(`${output}:${input}`, b);
      return h("td", {}, b);
    });
    return h("tr", {}, h("th", { scope: "row" }, h("span", {}, `${t("output")} ${output}`), modeCell), buttons);
  });

  const presets = device.controls.actions.includes("recall_preset") ? presetRow(ctx, device) : null;
  const body = [
    picker.el,
    h("div", { class: "matrix-scroll" }, h("table", { class: "matrix" }, h("thead", {}, head), h("tbody", {}, rows))),
    presets,
  ];

  function update(d) {
    const routes = d.state.routes || {};
    const routeModes = d.state.modes || {};
    for (let output = 1; output <= outputs; output++) {
      const current = routes[String(output)];
      for (let input = 0; input <= inputs; input++) press(cells.get(`${output}:${input}`), current === input);
      const m = routeModes[String(output)];
      modeCells.get(output).textContent = current === null || current === undefined ? t("unknown") : m ? t(`mode.${m}`) : "";
    }
  }
  return { body, update };
}

function presetRow(ctx, device) {
  const { h, t } = ctx;
  const number = h("input", { type: "number", min: "0", max: "999", value: "1", class: "preset", "aria-label": t("matrix.preset") });
  const recall = h("button", { type: "button", class: "btn" }, t("matrix.recall"));
  recall.addEventListener("click", () => act(ctx, device.id, "recall_preset", { preset: Number(number.value) }, recall));
  const row = [h("span", {}, t("matrix.preset")), number, recall];
  if (device.controls.actions.includes("save_preset")) {
    const save = h("button", { type: "button", class: "btn" }, t("matrix.save"));
    save.addEventListener("click", () => act(ctx, device.id, "save_preset", { preset: Number(number.value) }, save));
    row.push(save);
  }
  return h("div", { class: "row presets" }, row);
}

export default {
  mount(root, ctx) {
    return deviceCards(ctx, root, ["matrix"], (d) => matrixCard(ctx, d));
  },
};
