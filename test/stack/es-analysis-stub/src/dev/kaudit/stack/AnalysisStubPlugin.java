package dev.kaudit.stack;

import java.util.Map;
import java.util.regex.Pattern;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.email.UAX29URLEmailTokenizer;
import org.apache.lucene.analysis.miscellaneous.RemoveDuplicatesTokenFilter;
import org.apache.lucene.analysis.pattern.PatternCaptureGroupTokenFilter;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;

/**
 * Test stack only (test/stack/stack.sh, KAUDIT_STACK_ES_SECURE=true). The integ-test distribution of
 * Elasticsearch ships x-pack-security but not the analysis-common module, and the mapping of the
 * .security index (API keys, native users) names three of its components: the pattern_capture filter, the
 * uax_url_email tokenizer and the unique filter. These are stand-ins made of the Lucene classes the
 * distribution already ships, so the index can be created. `unique` here drops duplicates at the same
 * position only (Lucene's RemoveDuplicatesTokenFilter); for the security index's email field that does not
 * matter. Never for a real cluster: install the full distribution there.
 */
public class AnalysisStubPlugin extends Plugin implements AnalysisPlugin {
  @Override
  public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
    return Map.of(
        "pattern_capture",
        (indexSettings, environment, name, settings) -> {
          Pattern[] patterns =
              settings.getAsList("patterns").stream().map(Pattern::compile).toArray(Pattern[]::new);
          boolean preserveOriginal = settings.getAsBoolean("preserve_original", true);
          return new AbstractTokenFilterFactory(name, settings) {
            @Override
            public TokenStream create(TokenStream input) {
              return new PatternCaptureGroupTokenFilter(input, preserveOriginal, patterns);
            }
          };
        },
        "unique",
        (indexSettings, environment, name, settings) ->
            new AbstractTokenFilterFactory(name, settings) {
              @Override
              public TokenStream create(TokenStream input) {
                return new RemoveDuplicatesTokenFilter(input);
              }
            });
  }

  @Override
  public Map<String, AnalysisProvider<TokenizerFactory>> getTokenizers() {
    return Map.of(
        "uax_url_email",
        (indexSettings, environment, name, settings) ->
            TokenizerFactory.newFactory(name, UAX29URLEmailTokenizer::new));
  }
}
