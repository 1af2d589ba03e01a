// "did you mean …?" — the closest known word by edit distance, if it is close enough to help.

/** Edit distance where swapping two neighbours ("gaet" for "gate") is one edit, not two. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

export function closestWord(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  // Allow about one typo per three letters; a prefix ("quantize" for "quant") also counts.
  const tolerance = Math.max(1, Math.floor(word.length / 3));
  if (best !== undefined && (bestDistance <= tolerance || (word.length >= 3 && best.startsWith(lower)) || (best.length >= 3 && lower.startsWith(best.toLowerCase())))) {
    return best;
  }
  return undefined;
}

export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  const best = closestWord(word, candidates);
  return best === undefined ? undefined : `did you mean '${best}'?`;
}

/** "a, b or c" for messages that list the allowed values. */
export function oneOf(values: readonly (string | number)[]): string {
  const quoted = values.map((v) => (typeof v === 'number' ? String(v) : `'${v}'`));
  return quoted.length <= 1 ? quoted.join('') : `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`;
}
