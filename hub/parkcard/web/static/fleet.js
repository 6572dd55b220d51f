// The live fleet: the hub sends the whole fleet as JSON over Server-Sent Events each time it commits a
// change; the table is rebuilt from text only (textContent), never from markup.
(function () {
  "use strict";
  var table = document.getElementById("fleet");
  var live = document.getElementById("live");
  var columns = ["id", "name", "role", "state", "last_seen", "queue", "oldest", "alarms", "firmware", "heap",
                 "versions", "authorised", "locked", "alerts"];

  function row(t) {
    var tr = document.createElement("tr");
    tr.dataset.terminal = t.id;
    tr.className = t.online ? "online" : "offline";
    columns.forEach(function (name) {
      var td = document.createElement("td");
      if (name === "id") {
        var a = document.createElement("a");
        a.href = "/fleet/" + t.id;
        a.textContent = t.id;
        td.appendChild(a);
      } else {
        td.textContent = t[name];
      }
      if (name === "state" || name === "alerts") { td.className = name; }
      tr.appendChild(td);
    });
    return tr;
  }

  var events = new EventSource("/fleet/events");
  events.addEventListener("fleet", function (message) {
    var body = document.createElement("tbody");
    JSON.parse(message.data).forEach(function (t) { body.appendChild(row(t)); });
    table.replaceChild(body, table.tBodies[0]);
    live.dataset.state = "live";
    live.textContent = table.dataset.liveText;
  });
  events.onerror = function () {
    live.dataset.state = "lost";
    live.textContent = table.dataset.lostText;
  };
}());
