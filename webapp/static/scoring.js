// The assessor's form (GB/T 42195-2022) scored while it is filled in: the total, each group's subtotal and
// the resulting level with its adjustments. Only a guide: the server scores the submitted form again, and
// its result is the one stored.
(function () {
  var form = document.querySelector("form.taskform");
  if (!form || !form.querySelector('[data-path="self_care"]')) return;
  var en = document.documentElement.lang === "en";
  var T = en
    ? { title: "Running score", total: "Total", answered: "Items scored", base: "Level by total", level: "Level",
        pending: "scored when all 26 items are", note: "A guide while scoring: the level stored is the one the system computes on submission.",
        coma: "In a coma: complete disability directly", dementia: "Diagnosed dementia or psychiatric disorder: one level up",
        risks: "Care-risk events in 30 days: one level up", once: "Several reasons: raised one level at most" }
    : { title: "实时计分", total: "总分", answered: "已评项目", base: "按总分等级", level: "评估等级",
        pending: "26项全部评分后显示", note: "仅供评估时参考，最终等级以提交后系统计算结果为准。",
        coma: "处于昏迷状态，直接评定为完全失能", dementia: "确诊痴呆或精神疾病，上调一个等级",
        risks: "近30天照护风险事件≥{n}次，上调一个等级", once: "多项上调条件同时满足，最多上调一个等级" };

  fetch("/assessment/scale.json", { credentials: "same-origin" })
    .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
    .then(start)
    .catch(function (err) { console.error(err); });

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function start(scale) {
    var panel = el("aside", "score-panel");
    panel.setAttribute("aria-live", "polite");
    panel.appendChild(el("h3", null, T.title));
    var list = el("dl", "score-figures");
    var rows = {};
    function row(key, label) {
      var pair = list.appendChild(el("div", "score-item score-item-" + key));
      pair.appendChild(el("dt", null, label));
      rows[key] = pair.appendChild(el("dd", "score-" + key));
    }
    row("total", T.total);
    row("answered", T.answered);
    scale.groups.forEach(function (g) { row("group-" + g.key, g.name); });
    row("base", T.base);
    row("level", T.level);
    panel.appendChild(list);
    var reasons = panel.appendChild(el("ul", "score-reasons"));
    panel.appendChild(el("p", "help", T.note));
    var first = form.querySelector('[data-path="self_care"]');
    first.parentNode.insertBefore(panel, first);

    // What each item assesses, under its title (the score descriptions are the choices themselves).
    scale.items.forEach(function (item) {
      var set = form.querySelector('[data-path="' + item.group + "." + item.key + '"]');
      if (set && item.what && !set.querySelector(".item-meaning")) {
        var legend = set.querySelector("legend");
        if (legend) legend.insertAdjacentElement("afterend", el("span", "help item-meaning", item.what));
      }
    });

    function chosen(name) {
      var input = form.querySelector('[name="' + name + '"]:checked');
      if (input) return input.value;
      var field = form.querySelector('[name="' + name + '"]:not([type=radio]):not([type=checkbox])');
      return field ? field.value : "";
    }
    function number(name) {
      var n = parseInt(chosen(name), 10);
      return isNaN(n) || n < 0 ? 0 : n;
    }
    function levelFor(total) {
      var band = scale.levels.filter(function (b) { return b.low <= total && total <= b.high; })[0];
      return band ? band.level : null;
    }
    function raise(level, steps) {
      var at = scale.order.indexOf(level);
      return scale.order[Math.min(at + steps, scale.order.length - 1)];
    }

    function update() {
      var total = 0, answered = 0, subtotals = {};
      scale.groups.forEach(function (g) { subtotals[g.key] = [0, 0]; });
      scale.items.forEach(function (item) {
        var value = chosen("f." + item.group + "." + item.key);
        var score = parseInt(value, 10);
        subtotals[item.group][1] += item.max;
        if (value !== "" && !isNaN(score) && score >= 0 && score <= item.max) {
          total += score; answered += 1; subtotals[item.group][0] += score;
        }
      });
      rows.total.textContent = total + " / " + scale.max_total;
      rows.answered.textContent = answered + " / " + scale.items.length;
      scale.groups.forEach(function (g) {
        rows["group-" + g.key].textContent = subtotals[g.key][0] + " / " + subtotals[g.key][1];
      });
      reasons.textContent = "";
      panel.dataset.level = "";
      if (answered < scale.items.length) {
        rows.base.textContent = T.pending;
        rows.level.textContent = T.pending;
        return;
      }
      var base = levelFor(total);
      var level = base, why = [];
      if (chosen("f.special_conditions.coma") === "true") {
        level = "complete"; why.push(T.coma);
      } else {
        var steps = 0;
        if (chosen("f.special_conditions.dementia") === "true" || chosen("f.special_conditions.psychiatric") === "true") {
          steps += 1; why.push(T.dementia);
        }
        var risks = ["falls", "choking", "self_harm", "wandering"].reduce(function (sum, key) {
          return sum + number("f.special_conditions." + key);
        }, 0);
        if (risks >= scale.risk_events_threshold) { steps += 1; why.push(T.risks.replace("{n}", scale.risk_events_threshold)); }
        if (steps > 1 && !scale.stack_adjustments) { steps = 1; why.push(T.once); }
        level = raise(base, steps);
      }
      rows.base.textContent = scale.labels[base];
      rows.level.textContent = scale.labels[level];
      panel.dataset.level = level;
      why.forEach(function (text) { reasons.appendChild(el("li", null, text)); });
    }
    form.addEventListener("input", update);
    form.addEventListener("change", update);
    update();
  }
})();
