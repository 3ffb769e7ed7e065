// The notice board's strip: each `noticeboard.notice` event, newest first, at most 3.
// Everything comes from ctx; the module imports nothing of the page's.

const STRINGS = { en: { notices: "Notices" }, zh: { notices: "通知" } };

export default {
  mount(el, ctx) {
    const t = ctx.i18n(STRINGS);
    const list = ctx.h("ul", { class: "noticeboard" });
    el.append(ctx.h("strong", {}, t("notices")), list);
    return ctx.hall.on("noticeboard.notice", (event) => {
      list.prepend(ctx.h("li", {}, `${event.data.text} (${event.data.by})`));
      while (list.children.length > 3) list.lastChild.remove();
    });
  },
};
