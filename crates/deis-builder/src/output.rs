//! What the person running `git push` reads: steps as `-----> ` lines, a build's own output as
//! it happens (indented like Heroku's), and one `!` line for a failure. Writes that fail (the
//! client went away) are ignored: the build's outcome does not depend on being watched.

use std::pin::Pin;

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// A stream of progress to the git client.
pub(crate) struct Output {
    sink: Pin<Box<dyn AsyncWrite + Send>>,
    /// An unfinished line of build output, held until its newline arrives.
    partial: String,
    /// Set once a write stalled: nobody reads any more (the client left), so the build goes on
    /// without output rather than waiting for a reader that will never come.
    gone: bool,
}

/// How long a write may wait for the client to read.
const STALL: std::time::Duration = std::time::Duration::from_secs(10);

impl Output {
    pub(crate) fn new(sink: impl AsyncWrite + Send + 'static) -> Self {
        Output {
            sink: Box::pin(sink),
            partial: String::new(),
            gone: false,
        }
    }

    /// Writes `text` as is.
    pub(crate) async fn raw(&mut self, text: &str) {
        if self.gone {
            return;
        }
        let write = async {
            self.sink.write_all(text.as_bytes()).await?;
            self.sink.flush().await
        };
        match tokio::time::timeout(STALL, write).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => self.gone = true,
        }
    }

    /// `-----> text`
    pub(crate) async fn step(&mut self, text: &str) {
        self.raw(&format!("-----> {text}\n")).await;
    }

    /// ` !     text`
    pub(crate) async fn failure(&mut self, text: &str) {
        let mut lines = String::new();
        for line in text.lines() {
            lines.push_str(&format!(" !     {line}\n"));
        }
        self.raw(&lines).await;
    }

    /// A chunk of a build's own output: complete lines are indented (steps that already start
    /// with `-----> ` are kept), the rest waits for its newline.
    pub(crate) async fn build_output(&mut self, chunk: &str) {
        self.partial.push_str(chunk);
        let Some(end) = self.partial.rfind('\n') else {
            return;
        };
        let complete: String = self.partial.drain(..=end).collect();
        let mut text = String::new();
        for line in complete.lines() {
            text.push_str(&indent(line));
        }
        self.raw(&text).await;
    }

    /// Writes what is left of a build's output.
    pub(crate) async fn finish_build_output(&mut self) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.raw(&indent(&line)).await;
        }
    }

    /// Flushes and closes the stream.
    pub(crate) async fn close(mut self) {
        let _ = tokio::time::timeout(STALL, self.sink.shutdown()).await;
    }
}

fn indent(line: &str) -> String {
    let line = line.trim_end_matches('\r');
    if line.starts_with("-----> ") || line.starts_with(" !") {
        format!("{line}\n")
    } else {
        format!("       {line}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn build_output_is_indented_line_by_line() {
        let (writer, mut reader) = tokio::io::duplex(4096);
        let mut out = Output::new(writer);
        out.step("Building").await;
        out.build_output("Step 1/2 : FROM x\nhal").await;
        out.build_output("f a line\n-----> a step\nlast").await;
        out.finish_build_output().await;
        out.failure("it broke\nbadly").await;
        out.close().await;
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut reader, &mut text)
            .await
            .expect("read");
        assert_eq!(
            text,
            "-----> Building\n       Step 1/2 : FROM x\n       half a line\n-----> a step\n       last\n !     it broke\n !     badly\n"
        );
    }
}
