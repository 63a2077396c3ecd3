// Long requests (testing a connection, refreshing a list) show that work is under way
// and cannot be submitted twice.
document.addEventListener("submit", function (event) {
  var form = event.target;
  var text = form.getAttribute("data-busy");
  if (!text) return;
  var button = form.querySelector("button[type=submit]");
  if (!button) return;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.textContent = text;
});
