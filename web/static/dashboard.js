// Progressive enhancement only: every action also works as a plain form without this file.
"use strict";

// The texts this script shows, rendered by base.html through the catalogue: the script has no words of its own.
function pageTexts() {
  const block = document.getElementById("dashboard-texts");
  return block ? JSON.parse(block.textContent) : {};
}

function setupCopyButtons() {
  const texts = pageTexts();
  for (const button of document.querySelectorAll("[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const original = button.textContent;
      try {
        await navigator.clipboard.writeText(button.dataset.copy);
        button.textContent = texts.copied || original;
      } catch (error) {
        button.textContent = texts.copyFailed || original;
      }
      setTimeout(() => { button.textContent = original; }, 2000);
    });
  }
}

// "SPF check for all": start spfCheckAll in the background and follow its progress, then reload: the
// finished status queued the summary, so the list shows it with fresh results. Without JavaScript the
// form's own POST waits for the whole check and ends on the same list.
function setupSpfAll() {
  const form = document.querySelector("form[data-spf-all]");
  const box = document.querySelector("[data-spf-progress]");
  if (!form || !box || !window.fetch) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = form.querySelector("input[name=csrf_token]").value;
    const bar = box.querySelector("progress");
    const checked = box.querySelector("[data-spf-checked]");
    const total = box.querySelector("[data-spf-total]");
    const button = form.querySelector("button");
    const show = (done, all) => {
      bar.max = Math.max(all, 1);
      bar.value = done;
      checked.textContent = String(done);
      total.textContent = String(all);
    };
    try {
      const started = await fetch(form.action, {
        method: "POST",
        headers: { "X-CSRF-Token": token, "Accept": "application/json" },
        credentials: "same-origin",
      });
      if (!started.ok) throw new Error(String(started.status));
      const start = await started.json();
      button.disabled = true;
      // The total is known from the start: the box never shows "0 of 0".
      show(0, start.total);
      box.hidden = false;
      const query = new URLSearchParams({ startedAt: start.startedAt });
      for (;;) {
        const response = await fetch(`/mail-accounts/spf-status?${query}`, { credentials: "same-origin" });
        if (!response.ok) throw new Error(String(response.status));
        const status = await response.json();
        show(status.checked, status.total);
        if (status.finished) break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      window.location.reload();
    } catch (error) {
      form.submit();
    }
  });
}

// Show the flash messages of a page fetched in the background in this page's live region.
function showFlashes(page) {
  const fresh = page.querySelector("main .flashes");
  if (!fresh) return;
  const current = document.querySelector("main .flashes");
  if (current) {
    current.innerHTML = fresh.innerHTML;
    return;
  }
  const crumbs = document.querySelector("main > .breadcrumb");
  if (crumbs) crumbs.after(fresh);
  else document.querySelector("main").prepend(fresh);
}

// The status switch of a row: post its form in the background and copy the switch's new state from the
// list the server answers with, so the focus stays on the switch instead of going back to the page start.
// Without this script the answer's #status-… fragment focuses the switch. A list filtered by status drops
// the row, so there the form posts as usual. It also posts as usual when the background post fails or its
// answer lacks the switch (signed out, account gone): the form names the target status, so a repeat is harmless.
function setupStatusToggles() {
  const rows = document.querySelector("tbody[data-status-filter]");
  if (!rows || rows.dataset.statusFilter || !window.fetch || !window.DOMParser) return;
  for (const form of rows.querySelectorAll("form[data-status-toggle]")) {
    const button = form.querySelector("button[role=switch]");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (form.dataset.busy) return;
      form.dataset.busy = "true";
      try {
        const response = await fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" });
        if (!response.ok) throw new Error(String(response.status));
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        const fresh = page.getElementById(button.id);
        if (!fresh) throw new Error("switch not in the answer");
        button.className = fresh.className;
        button.setAttribute("aria-checked", fresh.getAttribute("aria-checked"));
        button.setAttribute("aria-label", fresh.getAttribute("aria-label"));
        button.innerHTML = fresh.innerHTML;
        form.querySelector("input[name=status]").value = fresh.closest("form").querySelector("input[name=status]").value;
        showFlashes(page);
      } catch (error) {
        form.submit();
      } finally {
        delete form.dataset.busy;
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setupCopyButtons();
  setupSpfAll();
  setupStatusToggles();
});
