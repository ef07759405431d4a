// ftw: the little JavaScript there is. Every page works without it.
"use strict";

// Index page: filter the tool cards as you type (the form also works as a plain GET).
(function () {
  const box = document.querySelector("[data-tool-search]");
  if (!box) return;
  const cards = Array.from(document.querySelectorAll("[data-tool]"));
  const sections = Array.from(document.querySelectorAll("[data-group]"));
  const empty = document.querySelector("[data-no-match]");
  const apply = () => {
    const q = box.value.trim().toLowerCase();
    let shown = 0;
    for (const card of cards) {
      const hit = !q || card.dataset.tool.includes(q);
      card.hidden = !hit;
      if (hit) shown++;
    }
    for (const section of sections) {
      section.hidden = !section.querySelector("[data-tool]:not([hidden])");
    }
    if (empty) empty.hidden = shown > 0;
  };
  box.addEventListener("input", apply);
  apply();
})();
