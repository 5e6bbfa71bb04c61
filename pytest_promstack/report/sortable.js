"use strict";
// The sortable tables (class "sortable") of the run report and the dashboard: a click on a header
// sorts by that column (a cell's data-v when it is a number, else its text, Korean collation);
// a second click reverses. Inlined before each page's own script (report/html.py, page()).
(function () {
  for (const table of document.querySelectorAll("table.sortable")) {
    table.querySelectorAll("th").forEach((th, col) => th.addEventListener("click", () => {
      const asc = !th.classList.contains("asc");
      table.querySelectorAll("th").forEach((h) => h.classList.remove("asc", "desc"));
      th.classList.add(asc ? "asc" : "desc");
      const body = table.tBodies[0];
      const key = (tr) => {
        const td = tr.cells[col];
        const v = td && td.dataset.v;
        return v !== undefined && v !== "" && !isNaN(Number(v)) ? Number(v) : (v === "" ? -Infinity : (td ? td.textContent : ""));
      };
      const rows = Array.from(body.rows).sort((a, b) => {
        const x = key(a), y = key(b);
        const r = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), "ko");
        return asc ? r : -r;
      });
      body.replaceChildren(...rows);
    }));
  }
})();
