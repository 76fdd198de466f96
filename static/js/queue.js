// Posting queue: drag a post onto another slot to move it there (the post on that slot takes its
// place). An enhancement only: the drop fills the page's plain move form and submits it, so the
// server decides (it refuses past slots and posts a worker has claimed). Earlier / Later are forms.
(function () {
  "use strict";

  function init() {
    var form = document.querySelector("form.queue-move-form");
    if (!form) return;
    var dragged = null;

    function clearTargets() {
      document.querySelectorAll(".queue-slot.drop-target").forEach(function (el) {
        el.classList.remove("drop-target");
      });
    }

    document.addEventListener("dragstart", function (event) {
      var entry = event.target.closest ? event.target.closest(".queue-post[data-post]") : null;
      if (!entry) return;
      dragged = entry;
      entry.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", entry.getAttribute("data-post"));
    });

    document.addEventListener("dragend", function () {
      if (dragged) dragged.classList.remove("dragging");
      dragged = null;
      clearTargets();
    });

    function slotOf(event) {
      return dragged && event.target.closest ? event.target.closest(".queue-slot[data-slot-at]") : null;
    }

    document.addEventListener("dragover", function (event) {
      var slot = slotOf(event);
      if (!slot) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      if (!slot.classList.contains("drop-target")) {
        clearTargets();
        slot.classList.add("drop-target");
      }
    });

    document.addEventListener("drop", function (event) {
      var slot = slotOf(event);
      if (!slot) return;
      event.preventDefault();
      if (slot.contains(dragged)) return; // back on its own slot
      form.elements.post.value = dragged.getAttribute("data-post");
      form.elements.to.value = slot.getAttribute("data-slot-at");
      form.submit();
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
