// Progressive enhancement only: without this file a reload of the import page shows the same.
"use strict";

// An import's (or a promotion's) progress: fetch the progress part every second and swap it in,
// until it is finished (an import completed or rejected; a promotion completed, cancelled or
// paused), or the page is left.
function followImport() {
  const box = document.querySelector("[data-import-progress], [data-promotion-progress]");
  if (!box) return;
  const finished = () => box.querySelector("[data-finished]") !== null;
  if (finished()) return;
  const timer = setInterval(async () => {
    if (document.hidden) return;
    try {
      const answer = await fetch(box.dataset.importProgress || box.dataset.promotionProgress, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (answer.redirected || !answer.ok) return;
      box.innerHTML = await answer.text();
    } catch (_) { /* offline for a moment: the next tick tries again */ }
    if (finished()) clearInterval(timer);
  }, 1000);
}

document.addEventListener("DOMContentLoaded", followImport);
