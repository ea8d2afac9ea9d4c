//! Batched decoding: the requests in flight are decoded together, one token per step for every
//! sequence in the batch, as serving engines do. Each step's scores are reduced with a split
//! chosen from the step's shape — the tokens it processes and the size of the batch's cache —
//! as split-K and split-KV kernels choose theirs. f32 addition is not associative, so when the
//! batch changes a near-tie between two candidates can resolve the other way: at temperature 0
//! the same request then gives a different text, but only when other requests share its batch.
//! Alone in its batch, a request decodes exactly as in batch-invariant mode. Requests join
//! between steps within a per-step token budget, so a large wave joins over several steps.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::thread;

use tokio::sync::oneshot;

use super::{GenRequest, Generation, LocalModel, ReductionOrder, Stepper};

/// Context tokens per block of a split-KV attention kernel: the number of blocks in the batch's
/// cache is part of the shape the split is chosen from.
pub const KV_BLOCK: usize = 64;

/// The reduction order for one step that processes `tokens` tokens — one per sequence being
/// decoded plus the prompts of the requests joining the batch (their prefill), the row count
/// of the kernels' matrices — over a cache of `context` tokens (every sequence's prompt and
/// output so far). A lone sequence decodes in the batch-invariant order.
pub fn order_for(tokens: usize, context: usize) -> ReductionOrder {
    if tokens <= 1 {
        ReductionOrder::Sequential
    } else {
        // A kernel heuristic in miniature: the split follows the shape.
        ReductionOrder::SplitK(2 + (tokens + context / KV_BLOCK) % 7)
    }
}

struct Job {
    /// The revision that decodes this request (a silent update changes it mid-campaign).
    model: &'static LocalModel,
    req: GenRequest,
    reply: oneshot::Sender<Generation>,
}

/// One decoding thread serving every request sent to it, in batches.
pub struct BatchEngine {
    jobs: mpsc::Sender<Job>,
}

impl BatchEngine {
    /// Starts the decoding thread; it ends once the engine is dropped and its batch is done.
    pub fn start() -> std::io::Result<BatchEngine> {
        let (jobs, rx) = mpsc::channel();
        thread::Builder::new()
            .name("reprise-batch".into())
            .spawn(move || decode(rx))?;
        Ok(BatchEngine { jobs })
    }

    /// Decodes `req` on `model` in whatever batch is running; None if the decoding thread is
    /// gone.
    pub async fn generate(
        &self,
        model: &'static LocalModel,
        req: GenRequest,
    ) -> Option<Generation> {
        let (reply, result) = oneshot::channel();
        self.jobs.send(Job { model, req, reply }).ok()?;
        result.await.ok()
    }
}

/// Tokens one step may process — a token per sequence being decoded plus the prompts of the
/// requests joining — as a serving engine's per-step token budget: a wave of requests larger
/// than this joins over several steps, so their sequences run a step or more apart.
pub const STEP_TOKEN_BUDGET: usize = 256;

type Running = (Stepper<'static>, oneshot::Sender<Generation>);

fn decode(jobs: mpsc::Receiver<Job>) {
    let mut batch: Vec<Running> = Vec::new();
    let mut waiting: VecDeque<Running> = VecDeque::new();
    let arrive = |job: Job| (job.model.stepper(job.req), job.reply);
    loop {
        if batch.is_empty() && waiting.is_empty() {
            match jobs.recv() {
                Ok(job) => waiting.push_back(arrive(job)),
                Err(_) => return,
            }
        }
        // Requests that arrived meanwhile wait to join between steps.
        while let Ok(job) = jobs.try_recv() {
            waiting.push_back(arrive(job));
        }
        // A caller that gave up (a cancelled call) leaves, running or waiting.
        batch.retain(|(_, reply)| !reply.is_closed());
        waiting.retain(|(_, reply)| !reply.is_closed());
        // Join in arrival order while the step's budget allows; an idle engine always takes one.
        let mut prefill = 0;
        while let Some((next, _)) = waiting.front() {
            let prompt = next.prompt_tokens() as usize;
            let fits = batch.len() + prefill + prompt <= STEP_TOKEN_BUDGET;
            if !fits && !batch.is_empty() {
                break;
            }
            prefill += prompt;
            batch.extend(waiting.pop_front());
        }
        if batch.is_empty() {
            continue;
        }
        // Alone and past its prefill, a sequence is one token per step: the invariant order.
        let tokens = if batch.len() == 1 {
            1
        } else {
            batch.len() + prefill
        };
        let context = batch.iter().map(|(s, _)| s.context_tokens()).sum();
        let order = order_for(tokens, context);
        let mut i = 0;
        while i < batch.len() {
            if batch[i].0.step(order) {
                let (stepper, reply) = batch.swap_remove(i);
                let _ = reply.send(stepper.finish());
            } else {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use super::*;

    /// A prompt with near-ties that some splits resolve the other way (found by trying
    /// SplitK(2..=8) on several prompts: most have none, this one has three).
    const SENSITIVE: &str =
        "Explain in one paragraph why floating-point addition is not associative.";

    fn greedy(user: &str) -> GenRequest {
        GenRequest {
            system: None,
            user: user.into(),
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            max_tokens: 200,
            seed: None,
            stop: Vec::new(),
            top_logprobs: 0,
        }
    }

    #[test]
    fn alone_in_its_batch_a_request_decodes_as_batch_invariant() {
        assert_eq!(order_for(1, 500), ReductionOrder::Sequential);
        let model = LocalModel::builtin();
        let engine = BatchEngine::start().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let req = greedy(SENSITIVE);
        for _ in 0..3 {
            let out = rt.block_on(engine.generate(model, req.clone())).unwrap();
            assert_eq!(out, model.generate(&req));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_greedy_requests_split_after_a_shared_prefix() {
        let model = LocalModel::builtin();
        let engine = Arc::new(BatchEngine::start().unwrap());
        let req = greedy(SENSITIVE);
        let alone = model.generate(&req);
        // 32 callers, each sending its next request when the last returns (as the runner
        // does at concurrency 32), after a little jitter as a network or an archive adds.
        let workers: Vec<_> = (0..32u64)
            .map(|w| {
                let engine = Arc::clone(&engine);
                let req = req.clone();
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    for i in 0..8 {
                        let jitter = (w * 7 + i * 13) % 11 * 100;
                        tokio::time::sleep(std::time::Duration::from_micros(jitter)).await;
                        out.push(engine.generate(model, req.clone()).await.unwrap());
                    }
                    out
                })
            })
            .collect();
        let mut outputs = Vec::new();
        for w in workers {
            outputs.extend(w.await.unwrap());
        }
        let texts: BTreeSet<&str> = outputs.iter().map(|g| g.text.as_str()).collect();
        assert!(texts.len() > 1, "batching changed nothing");
        for g in &outputs {
            let shared = alone
                .tokens
                .iter()
                .zip(&g.tokens)
                .take_while(|(a, b)| a == b)
                .count();
            assert!(
                g.text == alone.text || shared >= 5,
                "split after {shared} tokens"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn prompts_larger_than_the_step_budget_still_join_one_at_a_time() {
        let model = LocalModel::builtin();
        let engine = Arc::new(BatchEngine::start().unwrap());
        // Each prompt alone is over the budget: an idle engine must still take it.
        let long = "Tell me about bread and yeast and flour. ".repeat(STEP_TOKEN_BUDGET / 8);
        let mut req = greedy(&long);
        req.max_tokens = 20;
        assert!(model.stepper(req.clone()).prompt_tokens() as usize > STEP_TOKEN_BUDGET);
        let calls: Vec<_> = (0..6)
            .map(|_| {
                let engine = Arc::clone(&engine);
                let req = req.clone();
                tokio::spawn(async move { engine.generate(model, req).await })
            })
            .collect();
        for call in calls {
            let g = call.await.unwrap().expect("every request is decoded");
            assert_eq!(g.tokens.len(), 20);
        }
    }
}
