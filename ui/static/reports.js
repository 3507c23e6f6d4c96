// Draws every [data-chart] element with the vendored ECharts from its JSON endpoint.
// A point's click opens the list of exactly the records it counts (its "url").
(function () {
  "use strict";

  function axisOption(data, narrow) {
    var series = data.series.map(function (s) {
      return {
        name: s.name, type: data.type, data: s.data,
        stack: data.stacked ? "total" : undefined,
        emphasis: { focus: "series" },
        label: { show: !narrow && data.series.length === 1, position: "top" }
      };
    });
    return {
      tooltip: { trigger: "axis", confine: true },
      legend: { type: "scroll", bottom: 0 },
      grid: { left: 8, right: 8, top: 16, bottom: 40, containLabel: true },
      xAxis: { type: "category", data: data.categories,
               axisLabel: { interval: 0, rotate: narrow || data.categories.length > 6 ? 35 : 0,
                            width: 90, overflow: "truncate" } },
      yAxis: { type: "value" },
      series: series
    };
  }

  function option(data, narrow) {
    if (data.type === "funnel") {
      return {
        tooltip: { trigger: "item", confine: true },
        series: [{ type: "funnel", name: data.series[0].name, data: data.series[0].data,
                   sort: "none", left: "5%", width: "90%", minSize: "8%",
                   label: { show: true, position: "inside", formatter: "{b}: {c}" } }]
      };
    }
    if (data.type === "pie") {
      return {
        tooltip: { trigger: "item", confine: true },
        legend: { type: "scroll", bottom: 0 },
        series: [{ type: "pie", name: data.series[0].name, data: data.series[0].data,
                   radius: narrow ? ["30%", "60%"] : ["35%", "70%"],
                   label: { show: !narrow } }]
      };
    }
    return axisOption(data, narrow);
  }

  function draw(el) {
    if (el.dataset.drawn || typeof echarts === "undefined") { return; }
    el.dataset.drawn = "1";
    fetch(el.dataset.chart, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (data) {
        var chart = echarts.init(el, null, { renderer: "canvas" });
        chart.setOption(option(data, el.clientWidth < 480));
        chart.on("click", function (p) {
          if (p.data && p.data.url) { window.location.href = p.data.url; }
        });
        window.addEventListener("resize", function () { chart.resize(); });
        el.dataset.ready = "1";
      })
      .catch(function () { el.dataset.failed = "1"; });
  }

  function scan(root) {
    (root.querySelectorAll ? root : document).querySelectorAll("[data-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () {
    scan(document);
    new MutationObserver(function (changes) {
      changes.forEach(function (c) {
        c.addedNodes.forEach(function (n) {
          if (n.nodeType !== 1) { return; }
          if (n.matches && n.matches("[data-chart]")) { draw(n); } else { scan(n); }
        });
      });
    }).observe(document.body, { childList: true, subtree: true });
  });
})();
