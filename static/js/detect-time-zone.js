// Suggest the browser's time zone when the field still holds the default.
(function () {
  var form = document.querySelector("[data-detect-time-zone]");
  if (!form) return;
  var field = form.querySelector("input[name=time_zone]");
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (field && zone && (field.value === "" || field.value === "UTC")) field.value = zone;
})();
