// @ts-check
/**
 * Answers into the page. Everything is built with textContent (never innerHTML): labels,
 * glosses and error messages come from the server and are shown as text.
 */

/** @typedef {import('./api.js').PredictBody} PredictBody */
/** @typedef {import('./api.js').ModerateBody} ModerateBody */
/** @typedef {import('./api.js').AnswerMeta} AnswerMeta */
/** @typedef {import('./api.js').ModelList} ModelList */

/**
 * A probability as a percentage with at least two significant digits, so that the small
 * probabilities of a spread-out answer (synthetic weights give ~0.5%) do not all read "0.5%".
 * @param {number} p
 */
export function percent(p) {
  const v = p * 100;
  return `${v >= 10 ? v.toFixed(1) : v.toPrecision(2)}%`;
}

/** @param {number} ms */
const millis = (ms) => `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * A row of a bar chart: the text says everything (a screen reader reads the name and the
 * percentage); the bar repeats the percentage for the eye and is hidden from assistive tech.
 * Its width is the probability itself, not scaled to the largest, so a flat answer looks flat.
 * @param {string} tag
 * @param {string} name
 * @param {string} detail
 * @param {number} probability
 */
function barRow(tag, name, detail, probability) {
  const row = document.createElement(tag);
  row.className = 'bar-row';
  row.dataset['probability'] = String(probability);
  const text = el('div', 'bar-text');
  text.append(el('span', 'bar-name', name), ' ', el('code', 'bar-detail', detail), ' ', el('span', 'bar-value', percent(probability)));
  const track = el('div', 'bar-track');
  track.setAttribute('aria-hidden', 'true');
  const fill = el('div', 'bar-fill');
  fill.style.width = `${Math.min(100, Math.max(0, probability * 100))}%`;
  track.append(fill);
  row.append(text, track);
  return row;
}

/**
 * @param {HTMLSelectElement} select
 * @param {ModelList} list
 */
export function renderModels(select, list) {
  const chosen = select.value;
  select.replaceChildren();
  for (const m of list.models) {
    const option = el('option');
    option.value = m.id;
    if (!m.available) {
      option.textContent = `${m.id} (unavailable: ${m.error ?? 'broken manifest'})`;
      option.disabled = true;
    } else {
      const facts = [m.precision, m.weights === 'synthetic' ? 'synthetic' : 'real weights'];
      if ((m.stages ?? 1) > 1) facts.push(`${m.stages} stages`);
      if (m.loaded) facts.push('loaded');
      if (m.id === list.default) facts.push('default');
      option.textContent = `${m.id} (${facts.join(', ')})`;
    }
    select.append(option);
  }
  if (list.models.length === 0) {
    const option = el('option', undefined, 'no models in the bucket');
    option.value = '';
    select.append(option);
  }
  const keep = list.models.find((m) => m.id === chosen && m.available) ?? list.models.find((m) => m.id === list.default && m.available);
  if (keep) select.value = keep.id;
}

/**
 * @param {HTMLSelectElement} select
 * @param {string[]} names
 */
export function renderPolicies(select, names) {
  const chosen = select.value;
  const none = el('option', undefined, 'none');
  none.value = '';
  select.replaceChildren(none, ...names.map((name) => Object.assign(el('option', undefined, name), { value: name })));
  if (names.includes(chosen)) select.value = chosen;
}

/**
 * @param {HTMLElement} facts
 * @param {Array<[string, string]>} entries
 */
function renderFacts(facts, entries) {
  facts.replaceChildren(...entries.flatMap(([term, value]) => [el('dt', undefined, term), el('dd', undefined, value)]));
}

/**
 * The whole answer: top 5, sizes and timings, concepts, and the moderation decision when a
 * policy was applied. Returns the one-sentence summary for the live region.
 * @param {{ predict: { body: PredictBody, meta: AnswerMeta }, moderation?: { body: ModerateBody, meta: AnswerMeta } }} answer
 * @returns {string}
 */
export function renderAnswer({ predict, moderation }) {
  const { body, meta } = predict;
  const image = body.images[0];
  if (!image) throw new Error('the answer has no image');
  const byId = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

  // The body's notice; the Warning header says the same for answers whose shape has no room for it.
  const notice = body.notice ?? (meta.weights === 'synthetic' ? meta.warning : null);
  const noticeEl = byId('notice');
  noticeEl.hidden = !notice;
  noticeEl.textContent = notice ?? '';

  byId('top-heading').textContent = `Top ${image.predictions.length}`;
  byId('top').replaceChildren(...image.predictions.map((p) => barRow('li', p.label, p.synset, p.probability)));

  const t = body.timings;
  const cache = meta.cache ? `, cache ${meta.cache}` : '';
  renderFacts(byId('facts'), [
    ['Model', `${body.model.id} (${body.model.precision}, ${body.model.weights} weights)`],
    ['Upright size', `${image.width} × ${image.height} px`],
    ['Server time', `${millis(t.total)}: model ${millis(t.model)}, decode ${millis(t.decode)}, preprocess ${millis(t.preprocess)}, inference ${millis(t.inference)}${cache}`],
    ['Round trip', millis(meta.clientMs)],
  ]);

  const concepts = image.concepts ?? [];
  byId('concepts-block').hidden = concepts.length === 0;
  byId('concept-list').replaceChildren(
    ...concepts.map((c) => {
      const row = barRow('li', c.name, `${c.id}, ${c.classes} ${c.classes === 1 ? 'class' : 'classes'}`, c.probability);
      row.title = c.gloss;
      return row;
    }),
  );

  const moderationEl = byId('moderation');
  moderationEl.hidden = !moderation;
  let decided = '';
  if (moderation) {
    const m = moderation.body;
    const decision = m.images[0]?.decision ?? 'allow';
    const decisionEl = byId('decision');
    decisionEl.className = `decision decision-${decision}`;
    // The policy runs on the deployment's default model, which may not be the model chosen above.
    decisionEl.textContent = `${decision.toUpperCase()} by policy "${m.policy.name}" (model ${m.model.id}${m.notice ? ', synthetic weights: this decision says nothing about the image' : ''})`;
    const triggered = m.images[0]?.triggered ?? [];
    byId('triggered').replaceChildren(
      ...(triggered.length === 0
        ? [el('li', undefined, 'No rule fired.')]
        : triggered.map((r) => el('li', undefined, `${r.action}: ${r.name} (${r.concept}) ${percent(r.probability)} ≥ ${percent(r.threshold)}`))),
    );
    decided = ` Moderation: ${decision}.`;
  }

  byId('answer').hidden = false;
  const top = image.predictions[0];
  const synthetic = body.model.weights === 'synthetic' ? ' Synthetic weights: not a real classification.' : '';
  return `${body.model.id}: top class ${top ? `${top.label}, ${percent(top.probability)}` : 'none'}.${synthetic}${decided}`;
}
