// The print button of a printable page (a Z report): the browser's own print dialog.
(function () {
  "use strict";
  var button = document.getElementById("z-print");
  if (button) { button.addEventListener("click", function () { window.print(); }); }
})();
