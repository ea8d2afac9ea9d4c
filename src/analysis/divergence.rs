//! First divergence: how many leading tokens each distinct output shares with the modal one,
//! and the branch histogram at the earliest split.

use std::collections::HashMap;

use super::tokenize::TokenList;
use super::{Branch, Divergence};

/// Number of identical leading tokens.
pub fn shared_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// One distinct output as the divergence code sees it.
pub struct Output<'a> {
    pub ids: &'a [u32],
    pub tokens: &'a TokenList,
    pub count: u64,
}

/// Branch histogram at token `index`: every output's token there (None where it ends),
/// weighted by its count, by count descending then token.
pub fn branches<'a>(index: usize, outputs: impl IntoIterator<Item = Output<'a>>) -> Divergence {
    let mut by_id: HashMap<Option<u32>, (Option<&'a str>, u64)> = HashMap::new();
    for o in outputs {
        let id = o.ids.get(index).copied();
        let token = o.tokens.get(index);
        let entry = by_id.entry(id).or_insert((token, 0));
        entry.1 += o.count;
    }
    let mut branches: Vec<Branch> = by_id
        .into_values()
        .map(|(token, count)| Branch {
            token: token.map(str::to_string),
            count,
        })
        .collect();
    branches.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.token.cmp(&b.token)));
    Divergence { index, branches }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_branches() {
        assert_eq!(shared_prefix(&[1, 2, 3], &[1, 2, 4]), 2);
        assert_eq!(shared_prefix(&[1, 2], &[1, 2, 4]), 2);
        assert_eq!(shared_prefix(&[], &[1]), 0);
        let t = |v: &[&str]| v.iter().collect::<TokenList>();
        let (a, b, c) = (t(&["x", "y"]), t(&["x", "z"]), t(&["x"]));
        let d = branches(
            1,
            [
                Output {
                    ids: &[0, 1],
                    tokens: &a,
                    count: 2,
                },
                Output {
                    ids: &[0, 2],
                    tokens: &b,
                    count: 2,
                },
                Output {
                    ids: &[0],
                    tokens: &c,
                    count: 3,
                },
            ],
        );
        assert_eq!(d.index, 1);
        let got: Vec<_> = d
            .branches
            .iter()
            .map(|b| (b.token.as_deref(), b.count))
            .collect();
        assert_eq!(got, [(None, 3), (Some("y"), 2), (Some("z"), 2)]);
    }
}
