// Reloads a page of a running application every data-refresh
// milliseconds, unless the "pause" box is ticked (remembered per browser).
(function () {
  var ms = parseInt(document.body.dataset.refresh || "0", 10);
  var box = document.getElementById("pause");
  if (!ms || !box) return;
  box.checked = localStorage.getItem("shoal-ui-pause") === "1";
  box.addEventListener("change", function () {
    localStorage.setItem("shoal-ui-pause", box.checked ? "1" : "0");
  });
  setInterval(function () { if (!box.checked) location.reload(); }, ms);
})();
