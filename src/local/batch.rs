//! Batched decoding: the requests in flight are decoded together, one token per step for every
//! sequence in the batch, as serving engines do. Each step's scores are reduced with a split
//! chosen from the batch size, as split-K kernels choose their split from the problem shape.
//! f32 addition is not associative, so when the batch size changes a near-tie between two
//! candidates can resolve the other way: at temperature 0 the same request then gives a
//! different text, but only when other requests share its batch. Alone in its batch, a request
//! decodes exactly as in batch-invariant mode.

use std::sync::mpsc;
use std::thread;

use tokio::sync::oneshot;

use super::{GenRequest, Generation, LocalModel, ReductionOrder, Stepper};

/// The reduction order for one step that processes `tokens` tokens: one per sequence being
/// decoded plus the prompts of the requests joining the batch (their prefill), as the row
/// count of the kernels' matrices. A lone sequence decodes in the batch-invariant order.
pub fn order_for(tokens: usize) -> ReductionOrder {
    if tokens <= 1 {
        ReductionOrder::Sequential
    } else {
        // A kernel heuristic in miniature: the split follows the shape.
        ReductionOrder::SplitK(2 + tokens % 7)
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

fn decode(jobs: mpsc::Receiver<Job>) {
    let mut batch: Vec<(Stepper<'static>, oneshot::Sender<Generation>)> = Vec::new();
    loop {
        let mut prefill = 0;
        let mut join = |job: Job, batch: &mut Vec<_>| {
            let stepper = job.model.stepper(job.req);
            prefill += stepper.prompt_tokens() as usize;
            batch.push((stepper, job.reply));
        };
        if batch.is_empty() {
            match jobs.recv() {
                Ok(job) => join(job, &mut batch),
                Err(_) => return,
            }
        }
        // Requests that arrived meanwhile join the batch between steps.
        while let Ok(job) = jobs.try_recv() {
            join(job, &mut batch);
        }
        // A caller that gave up (a cancelled call) leaves the batch.
        batch.retain(|(_, reply)| !reply.is_closed());
        // Alone and past its prefill, a sequence is one token per step: the invariant order.
        let tokens = if batch.len() == 1 {
            1
        } else {
            batch.len() + prefill
        };
        let order = order_for(tokens);
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
        assert_eq!(order_for(1), ReductionOrder::Sequential);
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
}
