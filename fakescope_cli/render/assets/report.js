(function () {
  "use strict";
  var list = document.getElementById("cards");
  var controls = document.getElementById("controls");
  if (!list || !controls) { return; }
  var cards = Array.prototype.slice.call(list.querySelectorAll("article.card"));
  var boxes = Array.prototype.slice.call(controls.querySelectorAll("input[data-verdict]"));
  var sortBy = document.getElementById("sort");
  var search = document.getElementById("search");
  var heat = document.getElementById("heat");
  var shown = document.getElementById("shown");
  function score(card) {
    var v = card.getAttribute("data-p");
    return v === "" ? null : parseFloat(v);
  }
  function index(card) { return parseInt(card.getAttribute("data-i"), 10); }
  function filter() {
    var on = {};
    boxes.forEach(function (b) { on[b.getAttribute("data-verdict")] = b.checked; });
    var q = search.value.toLowerCase();
    var n = 0;
    cards.forEach(function (card) {
      var ok = on[card.getAttribute("data-verdict")] === true &&
        (q === "" || card.getAttribute("data-path").toLowerCase().indexOf(q) !== -1);
      card.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = n + " of " + cards.length + " shown";
  }
  function order() {
    var key = sortBy.value;
    var sorted = cards.slice().sort(function (a, b) {
      if (key === "path") {
        var pa = a.getAttribute("data-path"), pb = b.getAttribute("data-path");
        if (pa !== pb) { return pa < pb ? -1 : 1; }
      } else if (key === "p-desc" || key === "p-asc") {
        var sa = score(a), sb = score(b);
        if (sa === null && sb !== null) { return 1; }
        if (sb === null && sa !== null) { return -1; }
        if (sa !== null && sb !== null && sa !== sb) { return key === "p-desc" ? sb - sa : sa - sb; }
      }
      return index(a) - index(b);
    });
    var frag = document.createDocumentFragment();
    sorted.forEach(function (card) { frag.appendChild(card); });
    list.appendChild(frag);
  }
  boxes.forEach(function (b) { b.addEventListener("change", filter); });
  search.addEventListener("input", filter);
  sortBy.addEventListener("change", order);
  heat.addEventListener("change", function () { document.body.classList.toggle("noheat", !heat.checked); });
  function setAll(value) {
    boxes.forEach(function (b) { b.checked = value; });
    filter();
  }
  document.getElementById("all").addEventListener("click", function () { setAll(true); });
  document.getElementById("none").addEventListener("click", function () { setAll(false); });
  controls.hidden = false;
  filter();
})();
