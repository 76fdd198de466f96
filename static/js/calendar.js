// Calendar: drag a scheduled post onto another day to move it there at the same local time.
// An enhancement only: the drop fills the page's plain move form and submits it, so the server
// decides (it refuses past times and posts a worker has claimed) and the page shows what happened.
(function () {
  "use strict";

  function init() {
    var form = document.querySelector("form.move-form");
    if (!form) {
      return;
    }
    var dragged = null;

    document.addEventListener("dragstart", function (event) {
      var entry = event.target.closest ? event.target.closest("[data-post]") : null;
      if (!entry) {
        return;
      }
      dragged = entry;
      entry.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", entry.getAttribute("data-post"));
    });

    document.addEventListener("dragend", function () {
      if (dragged) {
        dragged.classList.remove("dragging");
      }
      dragged = null;
      document.querySelectorAll(".drop-target").forEach(function (cell) {
        cell.classList.remove("drop-target");
      });
    });

    function dropCell(event) {
      return dragged && event.target.closest ? event.target.closest("[data-drop-date]") : null;
    }

    document.addEventListener("dragover", function (event) {
      var cell = dropCell(event);
      if (!cell) {
        return;
      }
      event.preventDefault(); // allows the drop
      event.dataTransfer.dropEffect = "move";
      if (!cell.classList.contains("drop-target")) {
        document.querySelectorAll(".drop-target").forEach(function (other) {
          other.classList.remove("drop-target");
        });
        cell.classList.add("drop-target");
      }
    });

    document.addEventListener("drop", function (event) {
      var cell = dropCell(event);
      if (!cell) {
        return;
      }
      event.preventDefault();
      var postId = dragged.getAttribute("data-post");
      if (cell.contains(dragged)) {
        return; // dropped back on its own day: nothing to do
      }
      form.elements.post.value = postId;
      form.elements.date.value = cell.getAttribute("data-drop-date");
      form.submit();
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
