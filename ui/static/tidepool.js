/* Small enhancements that the pages work without: the phone menu and "use my location".
   Loaded from /static (the Content-Security-Policy allows no inline script). */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function setupMenu(root) {
    var toggle = root.querySelector(".menu-toggle");
    var menu = toggle && document.getElementById(toggle.getAttribute("aria-controls"));
    if (!toggle || !menu || toggle.dataset.ready) { return; }
    toggle.dataset.ready = "1";
    toggle.addEventListener("click", function () {
      var open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      menu.classList.toggle("open", open);
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && menu.classList.contains("open")) {
        toggle.setAttribute("aria-expanded", "false");
        menu.classList.remove("open");
        toggle.focus();
      }
    });
  }

  function round(value) { return String(Math.round(value * 1e6) / 1e6); }

  function setupGeo(root) {
    root.querySelectorAll("button[data-geo]").forEach(function (button) {
      if (button.dataset.ready) { return; }
      button.dataset.ready = "1";
      var box = button.closest(".geo");
      var status = box.querySelector(".geo-status");
      if (!("geolocation" in navigator)) {
        button.hidden = true;
        return;
      }
      button.addEventListener("click", function () {
        status.textContent = button.dataset.busy;
        button.disabled = true;
        navigator.geolocation.getCurrentPosition(function (pos) {
          box.querySelector("input[data-part=lat]").value = round(pos.coords.latitude);
          box.querySelector("input[data-part=lng]").value = round(pos.coords.longitude);
          status.textContent = button.dataset.done;
          button.disabled = false;
          box.dispatchEvent(new CustomEvent("tp:geo", { bubbles: true }));
        }, function () {
          status.textContent = button.dataset.failed;
          button.disabled = false;
        }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
      });
    });
  }

  /* A small map under a geo point, only where a tile server is configured (data-tiles)
     and Leaflet loaded; offline or without tiles the two inputs still do the job. */
  function setupMaps(root) {
    if (!window.L) { return; }
    root.querySelectorAll(".geo-map[data-tiles]").forEach(function (el) {
      if (el.dataset.ready) { return; }
      el.dataset.ready = "1";
      var box = el.closest(".geo");
      var lat = box.querySelector("input[data-part=lat]");
      var lng = box.querySelector("input[data-part=lng]");
      var map = window.L.map(el, { zoomControl: true, attributionControl: true });
      window.L.tileLayer(el.dataset.tiles, { maxZoom: 18, attribution: el.dataset.attribution }).addTo(map);
      var marker = null;
      function show() {
        var a = parseFloat(lat.value), b = parseFloat(lng.value);
        if (isNaN(a) || isNaN(b)) { map.setView([35, 105], 3); return; }
        if (marker) { marker.setLatLng([a, b]); } else { marker = window.L.marker([a, b]).addTo(map); }
        map.setView([a, b], 15);
      }
      map.on("click", function (event) {
        lat.value = String(Math.round(event.latlng.lat * 1e6) / 1e6);
        lng.value = String(Math.round(event.latlng.lng * 1e6) / 1e6);
        show();
      });
      lat.addEventListener("change", show);
      lng.addEventListener("change", show);
      box.addEventListener("tp:geo", show);
      show();
    });
  }

  function setup(root) { setupMenu(root); setupGeo(root); setupMaps(root); }
  document.addEventListener("DOMContentLoaded", function () { setup(document); });
  document.addEventListener("htmx:after:swap", function (event) {
    setup(event.target && event.target.querySelectorAll ? event.target : document);
  });
})();
