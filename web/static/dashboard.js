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

// "SPF-Check für alle": start spfCheckAll in the background and follow its progress, then reload.
// Without JavaScript the form's own POST waits for the whole check.
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
      const started = await fetch(form.action, {
        method: "POST",
        headers: { "X-CSRF-Token": token, "Accept": "application/json" },
        credentials: "same-origin",
      });
      if (!started.ok) throw new Error(String(started.status));
      const { startedAt, total } = await started.json();
      button.disabled = true;
      box.hidden = false;
      bar.max = Math.max(total, 1);
      const query = new URLSearchParams({ startedAt });
      for (;;) {
        const response = await fetch(`/mail-accounts/spf-status?${query}`, { credentials: "same-origin" });
        if (!response.ok) throw new Error(String(response.status));
        const status = await response.json();
        bar.value = status.checked;
        text.textContent = `${status.checked} von ${status.total}`;
        if (status.finished) break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
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
