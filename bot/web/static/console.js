// The overview's chart: data from <script type="application/json" id="trend-data"> (no
// inline script, so the Content-Security-Policy can forbid them).
(function () {
  "use strict";
  function draw() {
    var holder = document.getElementById("trend");
    var source = document.getElementById("trend-data");
    if (!holder || !source || !window.echarts) { return; }
    var data = JSON.parse(source.textContent);
    var chart = window.echarts.init(holder);
    chart.setOption({
      tooltip: { trigger: "axis" },
      legend: { data: ["返回", "居家观察", "发热"] },
      grid: { left: 40, right: 16, top: 40, bottom: 30 },
      xAxis: { type: "category", data: data.days },
      yAxis: { type: "value", minInterval: 1 },
      series: [
        { name: "返回", type: "bar", data: data.returns },
        { name: "居家观察", type: "line", data: data.watching },
        { name: "发热", type: "line", data: data.fevers, itemStyle: { color: "#a32020" } }
      ]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
}());
