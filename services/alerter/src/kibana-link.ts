/** Rison string literal (the encoding of Kibana's `_a`/`_g` URL state): ! and ' are escaped with !. */
function risonString(value: string): string {
  return `'${value.replace(/!/g, '!!').replace(/'/g, "!'")}'`;
}

/** KQL string literal. */
function kqlString(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export interface KibanaLinkOptions {
  baseUrl: string;
  /** Data view of the findings data stream. */
  dataViewId: string;
}

/**
 * A Discover link that opens exactly these findings: the indexer stores each finding under its own
 * deterministic id as `_id`, so the query does not depend on how the other fields are mapped. The time
 * range pads the findings' event times by an hour on each side.
 */
export function kibanaFindingsUrl(
  options: KibanaLinkOptions,
  findingIds: string[],
  firstSeen: string,
  lastSeen: string,
): string {
  const hourMs = 3_600_000;
  const from = new Date(Date.parse(firstSeen) - hourMs).toISOString();
  const to = new Date(Date.parse(lastSeen) + hourMs).toISOString();
  const query = `_id:(${findingIds.map(kqlString).join(' or ')})`;
  const g = `(time:(from:${risonString(from)},to:${risonString(to)}))`;
  const a = `(dataSource:(dataViewId:${risonString(options.dataViewId)},type:dataView),query:(language:kuery,query:${risonString(query)}))`;
  return `${options.baseUrl.replace(/\/+$/, '')}/app/discover#/?_g=${encodeURIComponent(g)}&_a=${encodeURIComponent(a)}`;
}
