// node --test examples/shared/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEurosToCents, sanitizeAmountInput, centsToInput, formatCents } from './money.js';

test('parses what people type into integer cents', () => {
  const cases = [['45', 4500], ['45,5', 4550], ['45,50', 4550], ['45.50', 4550], ['0,01', 1], ['1 234,56', 123456],
    ['1\u202f234,56 €', 123456], ['19,99', 1999], ['0,1', 10], ['0', 0], ['45,', 4500], ['9999999,99', 999999999]];
  for (const [text, cents] of cases) assert.equal(parseEurosToCents(text), cents, text);
});

test('rejects what is not an amount', () => {
  for (const text of ['', ' ', 'abc', '45,505', '-5', '4e3', '1,2,3', ',50', '12345678', null, undefined, 45]) {
    assert.equal(parseEurosToCents(text), null, String(text));
  }
});

test('no float rounding: every cent from 0,00 to 99,99 round-trips', () => {
  for (let cents = 0; cents < 10000; cents += 1) assert.equal(parseEurosToCents(centsToInput(cents)), cents);
});

test('keypad input keeps a valid amount shape', () => {
  const cases = [['4550', '4550'], ['45,505', '45,50'], ['45.5', '45,5'], ['45,,5', '45,5'], [',5', '0,5'], ['007', '7'],
    ['1234567', '123456'], ['12a3', '123'], ['0,', '0,'], ['', '']];
  for (const [typed, kept] of cases) assert.equal(sanitizeAmountInput(typed), kept, typed);
});

test('formats cents in French euros', () => {
  assert.equal(formatCents(4550).replace(/\s/g, ' '), '45,50 €');
  assert.equal(formatCents(null), '—');
});
