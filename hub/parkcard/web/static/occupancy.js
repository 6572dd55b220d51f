// Gate occupancy, live: the hub sends who is inside as JSON over Server-Sent Events each time it commits a
// change; the figures are written as text only (textContent), never as markup.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var total = document.getElementById("occupancy-total");
  var table = document.getElementById("areas");

  function row(area) {
    var tr = document.createElement("tr");
    tr.dataset.area = area[0];
    var name = document.createElement("td");
    name.textContent = area[0];
    var inside = document.createElement("td");
    inside.className = "inside";
    inside.textContent = area[1];
    tr.appendChild(name);
    tr.appendChild(inside);
    return tr;
  }

  var events = new EventSource("/occupancy/events");
  events.addEventListener("occupancy", function (message) {
    var now = JSON.parse(message.data);
    var body = document.createElement("tbody");
    now.areas.forEach(function (area) { body.appendChild(row(area)); });
    table.replaceChild(body, table.tBodies[0]);
    total.textContent = now.total;
    live.dataset.state = "live";
    live.textContent = live.dataset.liveText;
  });
  events.onerror = function () {
    live.dataset.state = "lost";
    live.textContent = live.dataset.lostText;
  };
}());
