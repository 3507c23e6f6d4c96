// Drag and drop for the kanban board (no build step; loaded by kanban/board.html).
// Dropping a card on another column fills the card's move form ("dropped") and submits it,
// so htmx posts the move with the CSRF header and the card's version exactly as the
// keyboard path (the select and "Move" button) does; the server re-renders what changed.
(function () {
  "use strict";
  if (window.tidepoolKanban) { return; }  // the script may be loaded again by htmx swaps
  window.tidepoolKanban = true;
  var dragged = null;

  function columnOf(node) {
    return node && node.closest ? node.closest("[data-column]") : null;
  }

  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest && event.target.closest("[data-card][draggable=true]");
    if (!card) { return; }
    dragged = card;
    card.classList.add("kb-dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.id);
  });

  document.addEventListener("dragend", function () {
    if (dragged) { dragged.classList.remove("kb-dragging"); }
    dragged = null;
    document.querySelectorAll(".kb-drop").forEach(function (c) { c.classList.remove("kb-drop"); });
  });

  document.addEventListener("dragover", function (event) {
    var column = columnOf(event.target);
    if (!dragged || !column) { return; }
    event.preventDefault();  // allows the drop
    event.dataTransfer.dropEffect = "move";
    column.classList.add("kb-drop");
  });

  document.addEventListener("dragleave", function (event) {
    var column = columnOf(event.target);
    if (column && !column.contains(event.relatedTarget)) { column.classList.remove("kb-drop"); }
  });

  document.addEventListener("drop", function (event) {
    var column = columnOf(event.target);
    if (!dragged || !column) { return; }
    event.preventDefault();
    column.classList.remove("kb-drop");
    var card = dragged;
    var form = card.querySelector("form.kb-move");
    if (!form || columnOf(card) === column) { return; }
    form.elements.dropped.value = column.getAttribute("data-column");
    form.requestSubmit();
  });
})();
