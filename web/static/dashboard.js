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

// "SPF-Check für alle": check every account one by one and show the progress, then reload the list.
// Without JavaScript the form's own POST checks them all at once.
function setupSpfAll() {
  const form = document.querySelector("form[data-spf-all]");
  const box = document.querySelector("[data-spf-progress]");
  if (!form || !box || !window.fetch) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = form.querySelector("input[name=csrf_token]").value;
    const bar = box.querySelector("progress");
    const text = box.querySelector("[data-spf-progress-text]");
    const button = form.querySelector("button");
    try {
      const targets = await fetch("/mail-accounts/spf-targets", { credentials: "same-origin" });
      if (!targets.ok) throw new Error(String(targets.status));
      const slugs = (await targets.json()).accounts;
      button.disabled = true;
      box.hidden = false;
      bar.max = Math.max(slugs.length, 1);
      let done = 0;
      for (const slug of slugs) {
        text.textContent = `${done} von ${slugs.length}`;
        try {
          await fetch(`/mail-accounts/${slug}/spf-check`, {
            method: "POST",
            headers: { "X-CSRF-Token": token, "Accept": "application/json" },
            credentials: "same-origin",
          });
        } catch (error) {
          // One failed account does not stop the others; the list shows what was checked.
        }
        done += 1;
        bar.value = done;
      }
      text.textContent = `${done} von ${slugs.length} geprüft`;
      window.location.reload();
    } catch (error) {
      form.submit();
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setupCopyButtons();
  setupSpfAll();
});
