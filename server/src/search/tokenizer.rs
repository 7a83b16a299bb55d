//! Words for the search index, in any script.
//!
//! Words are cut where Unicode's word boundaries (UAX #29) put them, which keeps
//! Devanagari's vowel signs and viramas inside their words and splits at spaces and
//! punctuation. Scripts written without spaces (Chinese, Japanese, Korean as typed, Thai,
//! Lao, Khmer, Myanmar) have no boundaries a rule can find without a dictionary, so their
//! runs are indexed as overlapping pairs of characters (and single characters), as
//! Lucene's CJK analyzer does: a query's pairs, as a phrase, find the run they are part of.
//! Case and Latin accents are folded by the filters the analyzer adds after this.

use chat_shared::search::unspaced;
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, TextAnalyzer, Token, TokenStream, Tokenizer,
};
use unicode_segmentation::UnicodeSegmentation;

/// The analyzer of the index's text: pairs and single characters for unspaced scripts.
pub const INDEXING: &str = "chat";

/// An analyzer: [`Words`] with case and Latin accents folded.
pub fn analyzer(for_queries: bool) -> TextAnalyzer {
    TextAnalyzer::builder(Words { for_queries })
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// The tokens of `text` as the index or a query sees them: (position, text).
pub fn tokens(text: &str, for_queries: bool) -> Vec<(usize, String)> {
    let mut analyzer = analyzer(for_queries);
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while let Some(token) = stream.next() {
        out.push((token.position, token.text.clone()));
    }
    out
}

/// Cuts text into words (see the module's doc). For queries, a run of an unspaced script
/// gives only its pairs (a single character alone), so that a phrase of them matches.
#[derive(Clone, Copy, Debug)]
pub struct Words {
    /// Whether the text is a query's.
    pub for_queries: bool,
}

impl Tokenizer for Words {
    type TokenStream<'a> = WordStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordStream {
        let mut tokens = Vec::new();
        let mut position = 0;
        for (start, word) in text.split_word_bound_indices() {
            if !word.chars().any(char::is_alphanumeric) {
                continue;
            }
            if !word.chars().any(unspaced) {
                tokens.push(token(start, word, position, 1));
                position += 1;
                continue;
            }
            // A run of an unspaced script (UAX #29 gives an ideograph alone, a run of
            // Thai or Katakana whole): its characters, and their pairs.
            let chars: Vec<(usize, char)> = word.char_indices().collect();
            let alone = chars.len() == 1;
            for (i, &(offset, c)) in chars.iter().enumerate() {
                let from = start + offset;
                if alone || !self.for_queries {
                    tokens.push(token(
                        from,
                        &word[offset..offset + c.len_utf8()],
                        position,
                        1,
                    ));
                }
                if let Some(&(next, d)) = chars.get(i + 1) {
                    let end = next + d.len_utf8();
                    tokens.push(token(from, &word[offset..end], position, 2));
                }
                position += 1;
            }
        }
        WordStream {
            tokens: pair_adjacent_ideographs(&tokens, text, self.for_queries),
            next: 0,
        }
    }
}

fn token(offset: usize, text: &str, position: usize, length: usize) -> Token {
    Token {
        offset_from: offset,
        offset_to: offset + text.len(),
        position,
        text: text.to_string(),
        position_length: length,
    }
}

/// UAX #29 gives each ideograph (and each Hiragana) as a word of its own: the pairs of
/// neighbours that touch in the text are added here, and a lone character of a query that
/// has a neighbour is dropped for the pair.
fn pair_adjacent_ideographs(tokens: &[Token], text: &str, for_queries: bool) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::with_capacity(tokens.len() * 2);
    let single_unspaced = |t: &Token| {
        t.position_length == 1 && t.text.chars().count() == 1 && t.text.chars().all(unspaced)
    };
    for (i, token) in tokens.iter().enumerate() {
        let next = tokens
            .get(i + 1)
            .filter(|n| single_unspaced(token) && single_unspaced(n))
            .filter(|n| n.offset_from == token.offset_to);
        let previous_touches = i > 0
            && single_unspaced(token)
            && single_unspaced(&tokens[i - 1])
            && tokens[i - 1].offset_to == token.offset_from;
        let has_pair = next.is_some() || previous_touches;
        if !(for_queries && has_pair && single_unspaced(token)) {
            out.push(token.clone());
        }
        if let Some(next) = next {
            out.push(Token {
                offset_from: token.offset_from,
                offset_to: next.offset_to,
                position: token.position,
                text: text[token.offset_from..next.offset_to].to_string(),
                position_length: 2,
            });
        }
    }
    out
}

/// The tokens of one text.
pub struct WordStream {
    tokens: Vec<Token>,
    next: usize,
}

impl TokenStream for WordStream {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::tokens;

    fn texts(text: &str, for_queries: bool) -> Vec<String> {
        tokens(text, for_queries)
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    #[test]
    fn spaced_words_fold_case_and_accents() {
        assert_eq!(
            texts("Crème BRÛLÉE, s'il vous plaît!", false),
            ["creme", "brulee", "s'il", "vous", "plait"]
        );
    }

    #[test]
    fn hindi_keeps_its_words_whole() {
        assert_eq!(texts("हिन्दी में बात", false), ["हिन्दी", "में", "बात"]);
    }

    #[test]
    fn chinese_gives_characters_and_pairs_and_queries_pairs() {
        assert_eq!(
            texts("东京大学", false),
            ["东", "东京", "京", "京大", "大", "大学", "学"]
        );
        assert_eq!(texts("京大", true), ["京大"]);
        assert_eq!(texts("京", true), ["京"]);
    }

    #[test]
    fn pairs_share_positions_with_the_index() {
        let indexed = tokens("我爱东京大学", false);
        let query = tokens("东京大学", true);
        let start = indexed
            .iter()
            .find(|(_, t)| t == "东京")
            .map(|(p, _)| *p)
            .expect("indexed");
        for (offset, (position, text)) in query.iter().enumerate() {
            assert!(indexed.contains(&(start + offset, text.clone())), "{text}");
            assert_eq!(*position, offset);
        }
    }

    #[test]
    fn thai_and_katakana_runs_are_paired() {
        let thai = texts("สวัสดีครับ", false);
        assert!(thai.contains(&"สว".to_string()));
        assert_eq!(texts("カタカナ", true), ["カタ", "タカ", "カナ"]);
    }
}
