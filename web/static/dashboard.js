// Progressive enhancement only: every action also works as a plain form without this file.
"use strict";

function setupCopyButtons() {
  for (const button of document.querySelectorAll("[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const original = button.textContent;
      try {
        await navigator.clipboard.writeText(button.dataset.copy);
        button.textContent = "Kopiert";
      } catch (error) {
        button.textContent = "Bitte manuell kopieren";
      }
      setTimeout(() => { button.textContent = original; }, 2000);
    });
  }
}

// "SPF-Check für alle": check the accounts one by one and show the progress; the form's
// own POST (without JavaScript) checks them all at once.
function setupSpfAll() {
  const form = document.querySelector("form[data-spf-all]");
  const box = document.querySelector("[data-spf-progress]");
  if (!form || !box) return;
  form.addEventListener("submit", async (event) => {
    const rows = Array.from(document.querySelectorAll("tr[data-account-slug]"));
    if (rows.length === 0) return;
    event.preventDefault();
    const token = form.querySelector("input[name=csrf_token]").value;
    const bar = box.querySelector("progress");
    const text = box.querySelector("[data-spf-progress-text]");
    const button = form.querySelector("button");
    button.disabled = true;
    box.hidden = false;
    bar.max = rows.length;
    let done = 0;
    for (const row of rows) {
      text.textContent = `${done} von ${rows.length}`;
      try {
        const response = await fetch(`/mail-accounts/${row.dataset.accountSlug}/spf-check`, {
          method: "POST",
          headers: { "X-CSRF-Token": token, "Accept": "application/json" },
          credentials: "same-origin",
        });
        if (response.ok) {
          const result = await response.json();
          const cell = row.querySelector("[data-spf-cell]");
          if (cell && result.label) {
            cell.textContent = "";
            const badge = document.createElement("span");
            badge.className = result.ok ? "badge badge-ok" : "badge badge-problem";
            badge.textContent = result.label;
            cell.append(badge, " ", result.age || "");
          }
        }
      } catch (error) {
        // A failed account stays as it was; the others are still checked.
      }
      done += 1;
      bar.value = done;
    }
    text.textContent = `${done} von ${rows.length} geprüft`;
    button.disabled = false;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setupCopyButtons();
  setupSpfAll();
});
