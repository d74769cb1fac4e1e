// Progressive enhancement only: every action also works as a plain form without this file.
"use strict";

// The work list refreshes itself: new leads appear without a reload (every 5 s while visible).
function liveWorkList() {
  const body = document.querySelector("[data-refresh]");
  if (!body) return;
  const refresh = async () => {
    if (document.hidden) return;
    try {
      const answer = await fetch(body.dataset.refresh, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (answer.redirected || !answer.ok) return;
      body.innerHTML = await answer.text();
      hebrewDates(body);
    } catch (_) { /* offline for a moment: the next tick tries again */ }
  };
  setInterval(refresh, 5000);
}

// The board: drag a card to another column; the move is shown at once and rolled back when the
// gateway refuses it (409 required fields, 412 someone else moved it), with the reason shown.
function dragBoard() {
  const board = document.querySelector(".board");
  if (!board) return;
  const notice = document.getElementById("board-notice");
  let dragged = null;
  board.addEventListener("dragstart", (e) => {
    const card = e.target.closest(".card[draggable=true]");
    if (!card) return;
    dragged = card;
    e.dataTransfer.setData("text/plain", card.dataset.deal);
    e.dataTransfer.effectAllowed = "move";
  });
  board.addEventListener("dragover", (e) => {
    const column = e.target.closest(".column");
    if (!column || !dragged) return;
    e.preventDefault();
    column.classList.add("drop");
  });
  board.addEventListener("dragleave", (e) => {
    const column = e.target.closest(".column");
    if (column) column.classList.remove("drop");
  });
  board.addEventListener("drop", async (e) => {
    const column = e.target.closest(".column");
    if (!column || !dragged) return;
    e.preventDefault();
    column.classList.remove("drop");
    const card = dragged;
    dragged = null;
    const from = card.parentElement;
    const next = card.nextSibling;
    if (column.dataset.stage === card.closest(".column").dataset.stage) return;
    column.querySelector(".cards").prepend(card);  // optimistic
    card.classList.add("moving");
    const form = new URLSearchParams({ csrf: board.dataset.csrf, etag: card.dataset.etag, stage_id: column.dataset.stage });
    let result = { ok: false, message: "" };
    try {
      const answer = await fetch(`/deals/${encodeURIComponent(card.dataset.deal)}/stage`, {
        method: "POST", body: form, credentials: "same-origin", headers: { Accept: "application/json" },
      });
      result = await answer.json();
    } catch (_) { result = { ok: false, message: "" }; }
    card.classList.remove("moving");
    if (result.ok) {
      card.dataset.etag = result.etag;
      const select = card.querySelector("select[name=stage_id]");
      if (select) select.value = column.dataset.stage;
      notice.hidden = true;
    } else {
      from.insertBefore(card, next);  // roll back
      notice.textContent = result.message || "✗";
      notice.hidden = false;
    }
  });
}

// A column's "more deals" appends its next cards in place (without JS it opens them as a page).
function moreCards() {
  const board = document.querySelector(".board");
  if (!board) return;
  board.addEventListener("click", async (e) => {
    const link = e.target.closest("a[data-more]");
    if (!link) return;
    e.preventDefault();
    const item = link.closest("li");
    const answer = await fetch(link.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
    if (!answer.ok) return;
    item.insertAdjacentHTML("afterend", await answer.text());
    item.remove();
  });
}

// Hebrew pages show the Hebrew calendar beside the Gregorian date: each <time datetime> gets its
// Hebrew date (ה׳ בכסלו תשפ״ז) from the browser's own calendar data (Intl), as a small label
// after it and as its title. Without JavaScript the Gregorian date stands alone.
function hebrewDates(root) {
  if (document.documentElement.lang !== "he") return;
  // In the company's zone, as the Gregorian dates beside them are (i18n ZONES).
  const hebrew = new Intl.DateTimeFormat("he-IL-u-ca-hebrew", {
    day: "numeric", month: "long", year: "numeric", timeZone: "Asia/Jerusalem",
  });
  for (const time of root.querySelectorAll("time[datetime]:not([data-hebrew])")) {
    const when = new Date(time.dateTime);
    if (Number.isNaN(when.getTime())) continue;
    // Isolated (bdi): next to a Latin word ("SMS") its leading digits would join the time's.
    const label = document.createElement("bdi");
    label.className = "hebrew-date";
    label.textContent = hebrew.format(when);
    time.dataset.hebrew = label.textContent;
    time.title = label.textContent;
    time.after(label);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  liveWorkList(); dragBoard(); moreCards(); hebrewDates(document);
});
