// alertpack browse: the little the pages do in the browser (no framework, nothing fetched
// from outside): a status line kept fresh, new alerts into the table without a reload,
// stamp zoom, stretch, pixel read-out, flux/magnitude switch and keys.
(function () {
  "use strict";
  const body = document.body;
  const pollMs = Number(body.dataset.pollMs) || 1500;
  const live = body.dataset.live === "1";
  const statusLine = document.getElementById("status");
  const rowsBox = document.getElementById("rows");
  let shownTotal = rowsBox ? Number(rowsBox.dataset.total) : null;
  let refreshing = false;

  function describe(status) {
    const parts = [];
    if (status.live) {
      const l = status.live;
      parts.push('<span class="live-dot"></span>' + escape(l.topic) + " @ " + escape(l.server) +
                 ": " + l.alerts + " received" + (l.rejected ? ", " + l.rejected + " skipped" : ""));
      if (l.error) parts.push('<span class="problems" title="' + escape(l.error) + '">Kafka problem</span>');
    }
    const ix = status.indexing;
    if (ix && ix.running) parts.push("indexing file " + Math.min(ix.files_done + 1, ix.files_total) + " of " + ix.files_total);
    parts.push(status.alerts + " alert(s)");
    if (ix && ix.n_problems) {
      parts.push('<span class="problems" title="' + escape(ix.problems.join("\n")) + '">' + ix.n_problems + " file problem(s)</span>");
    }
    return parts.join(" · ");
  }

  function escape(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }

  async function refreshRows(since) {
    if (!rowsBox || refreshing) return;
    refreshing = true;
    try {
      const params = rowsBox.dataset.params;
      const url = "/rows?" + (params ? params + "&" : "") + "since=" + since;
      const response = await fetch(url, { cache: "no-store" });
      if (response.ok) rowsBox.innerHTML = await response.text();
    } finally {
      refreshing = false;
    }
  }

  async function poll() {
    let again = live;
    try {
      const response = await fetch("/api/status", { cache: "no-store" });
      const status = await response.json();
      if (statusLine) statusLine.innerHTML = describe(status);
      const indexing = status.indexing && status.indexing.running;
      again = again || indexing;
      if (rowsBox && shownTotal !== null && status.alerts !== shownTotal) {
        const since = shownTotal;
        shownTotal = status.alerts;
        await refreshRows(since);
      }
    } catch (error) {
      if (statusLine) statusLine.textContent = "server not answering";
      again = true;
    }
    if (again) setTimeout(poll, pollMs);
  }
  poll();

  // --- alert page: zoom, stretch, read-out, light curve axis, keys ---
  const stamps = Array.from(document.querySelectorAll(".stamp[data-width]"));
  function fitZoom() {
    const widest = Math.max(1, ...stamps.map((s) => Number(s.dataset.width)));
    return Math.max(1, Math.floor(260 / widest));
  }
  let zoom = Number(localStorage.getItem("alertpack-zoom")) || 0;
  function applyZoom() {
    if (!stamps.length) return;
    if (!zoom) zoom = fitZoom();
    for (const stamp of stamps) {
      stamp.style.width = Number(stamp.dataset.width) * zoom + "px";
      stamp.style.height = Number(stamp.dataset.height) * zoom + "px";
    }
    const label = document.getElementById("zoom-value");
    if (label) label.textContent = "×" + zoom;
  }
  function changeZoom(step) {
    zoom = Math.min(24, Math.max(1, zoom + step));
    localStorage.setItem("alertpack-zoom", String(zoom));
    applyZoom();
  }
  applyZoom();
  document.querySelectorAll("[data-zoom]").forEach((button) =>
    button.addEventListener("click", () => changeZoom(Number(button.dataset.zoom))));

  const stretchForm = document.getElementById("stretch-form");
  if (stretchForm) {
    stretchForm.addEventListener("change", (event) => {
      const url = new URL(window.location.href);
      url.searchParams.set("stretch", event.target.value);
      window.location.assign(url.toString());
    });
  }

  const pixelValues = new Map();
  for (const stamp of stamps) {
    const readout = stamp.closest(".stamp-panel").querySelector(".readout");
    stamp.addEventListener("mousemove", async (event) => {
      const width = Number(stamp.dataset.width), height = Number(stamp.dataset.height);
      const box = stamp.getBoundingClientRect();
      const column = Math.floor((event.clientX - box.left) / box.width * width);
      const row = Math.floor((event.clientY - box.top) / box.height * height);
      if (column < 0 || row < 0 || column >= width || row >= height) return;
      const source = stamp.dataset.values;
      if (!pixelValues.has(source)) {
        pixelValues.set(source, null);
        fetch(source).then((r) => r.json()).then((data) => pixelValues.set(source, data));
      }
      const data = pixelValues.get(source);
      const value = data && data.values ? data.values[row][column] : undefined;
      // FITS pixel numbers: 1-based, row 1 at the bottom
      readout.textContent = "x " + (column + 1) + ", y " + (height - row) +
        (value === undefined ? "" : ": " + (value === null ? "no data" : value + " " + (data.unit || "")));
    });
    stamp.addEventListener("mouseleave", () => { readout.textContent = ""; });
  }

  document.querySelectorAll("[data-curve]").forEach((button) => {
    button.addEventListener("click", () => {
      const box = button.closest(".lightcurve-box");
      box.querySelectorAll("[data-curve]").forEach((b) => b.classList.toggle("on", b === button));
      box.querySelector(".curve-flux").hidden = button.dataset.curve !== "flux";
      box.querySelector(".curve-mag").hidden = button.dataset.curve !== "mag";
    });
  });

  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, select, textarea") || event.ctrlKey || event.metaKey || event.altKey) return;
    const go = (id) => { const link = document.getElementById(id); if (link) window.location.assign(link.href); };
    if (event.key === "j" || event.key === "ArrowRight") go("next");
    else if (event.key === "k" || event.key === "ArrowLeft") go("previous");
    else if (event.key === "+" || event.key === "=") changeZoom(1);
    else if (event.key === "-") changeZoom(-1);
  });
})();
