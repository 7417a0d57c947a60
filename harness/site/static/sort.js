// Click a header of a table.sortable to sort its rows by that column; click again to reverse.
// Cells sort by their data-sort-value (numbers for data-sort="number"); empty values stay last.
(function () {
  "use strict";

  function sortKey(row, column) {
    var cell = row.cells[column];
    if (!cell) return "";
    var value = cell.getAttribute("data-sort-value");
    return value === null ? cell.textContent.trim() : value;
  }

  function sortBy(th) {
    var numeric = th.getAttribute("data-sort") === "number";
    var direction = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    Array.prototype.forEach.call(th.parentNode.cells, function (header) {
      if (header.hasAttribute("data-sort")) header.setAttribute("aria-sort", "none");
    });
    th.setAttribute("aria-sort", direction === 1 ? "ascending" : "descending");
    var body = th.closest("table").tBodies[0];
    var rows = Array.prototype.map.call(body.rows, function (row, index) {
      return { row: row, index: index, key: sortKey(row, th.cellIndex) };
    });
    rows.sort(function (a, b) {
      if (a.key === "" || b.key === "") return (a.key === "") - (b.key === "") || a.index - b.index;
      var order = numeric ? parseFloat(a.key) - parseFloat(b.key) : a.key.localeCompare(b.key);
      return order * direction || a.index - b.index;
    });
    rows.forEach(function (entry) { body.appendChild(entry.row); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.sortable").forEach(function (table) {
      table.classList.add("js-sortable");
      table.querySelectorAll("th[data-sort]").forEach(function (th) {
        th.tabIndex = 0;
        th.addEventListener("click", function () { sortBy(th); });
        th.addEventListener("keydown", function (event) {
          if (event.key === "Enter" || event.key === " ") {
            event.preventDefault();
            sortBy(th);
          }
        });
      });
    });
  });
})();
