//! Logs in Redis, so several logger replicas serve the same lines and a logger restart loses
//! none: a list per app (`deis:logs:app:<app>`, trimmed to the line limit), an offset counter
//! per app, a pub/sub channel per app for followers, and each shipper's last batch number, all
//! changed by one script so that a batch is stored whole and once.

use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use crate::entry::Entry;

/// ARGV: sequence, max lines, then (app, position, entry JSON) per line. Positions and the
/// sequence are 20-digit zero-padded decimals, compared as strings (Lua's numbers are doubles,
/// too coarse for nanoseconds). Positions above zero are compared with the shipper's last one,
/// else the sequence is (see `Logs::push`).
const APPEND: &str = r"
local zero = '00000000000000000000'
local seq = ARGV[1]
local last = zero
if KEYS[1] ~= '' then last = redis.call('GET', KEYS[1]) or zero end
local positioned = false
for i = 4, #ARGV, 3 do
  if ARGV[i] > zero then positioned = true end
end
if KEYS[1] ~= '' and not positioned then
  if seq <= last then return 0 end
  redis.call('SET', KEYS[1], seq)
end
local max = tonumber(ARGV[2])
local stored = 0
for i = 3, #ARGV, 3 do
  local app = ARGV[i]
  local position = ARGV[i + 1]
  if KEYS[1] == '' or not positioned or position > last then
    if positioned and KEYS[1] ~= '' then
      last = position
      redis.call('SET', KEYS[1], last)
    end
    local offset = redis.call('INCR', 'deis:logs:next:' .. app)
    local line = offset .. ' ' .. ARGV[i + 2]
    redis.call('RPUSH', 'deis:logs:app:' .. app, line)
    redis.call('LTRIM', 'deis:logs:app:' .. app, -max, -1)
    redis.call('PUBLISH', 'deis:logs:live:' .. app, line)
    stored = stored + 1
  end
end
return stored
";

/// A Redis connection used as the log store.
#[derive(Clone)]
pub(crate) struct RedisStore {
    client: redis::Client,
    connection: ConnectionManager,
    max_lines: usize,
}

fn encode(e: &Entry) -> String {
    serde_json::json!({"s": e.source, "t": e.time, "m": e.message}).to_string()
}

fn decode(app: &str, line: &str) -> Option<Entry> {
    let (offset, json) = line.split_once(' ')?;
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    Some(Entry {
        app: app.to_owned(),
        source: v["s"].as_str()?.to_owned(),
        time: v["t"].as_i64()?,
        message: v["m"].as_str()?.to_owned(),
        offset: offset.parse().ok()?,
    })
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`).
    pub(crate) async fn connect(url: &str, max_lines: usize) -> redis::RedisResult<RedisStore> {
        let client = redis::Client::open(url)?;
        let connection = ConnectionManager::new(client.clone()).await?;
        Ok(RedisStore {
            client,
            connection,
            max_lines,
        })
    }

    /// Stores a batch (once per shipper and sequence; `sequence` 0 always stores).
    pub(crate) async fn push(
        &self,
        shipper: &str,
        sequence: u64,
        entries: &[Entry],
    ) -> redis::RedisResult<u32> {
        let script = redis::Script::new(APPEND);
        let key = if shipper.is_empty() {
            String::new()
        } else {
            format!("deis:logs:shipper:{shipper}")
        };
        let mut invocation = script.key(key);
        invocation.arg(format!("{sequence:020}"));
        invocation.arg(self.max_lines);
        for e in entries {
            invocation
                .arg(&e.app)
                .arg(format!("{:020}", e.offset))
                .arg(encode(e));
        }
        let mut connection = self.connection.clone();
        invocation.invoke_async(&mut connection).await
    }

    /// The last `n` lines of `app`.
    pub(crate) async fn tail(&self, app: &str, n: usize) -> redis::RedisResult<Vec<Entry>> {
        let mut connection = self.connection.clone();
        let start = -(i64::try_from(n.max(1)).unwrap_or(i64::MAX));
        let lines: Vec<String> = connection
            .lrange(format!("deis:logs:app:{app}"), start as isize, -1)
            .await?;
        Ok(lines.iter().filter_map(|l| decode(app, l)).collect())
    }

    /// The last `n` lines, then every new one (no gap, no repeat), on a channel.
    pub(crate) async fn follow(
        &self,
        app: &str,
        n: usize,
    ) -> redis::RedisResult<(Vec<Entry>, mpsc::Receiver<Entry>)> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(format!("deis:logs:live:{app}")).await?;
        let tail = self.tail(app, n).await?;
        let last = tail.last().map_or(0, |e| e.offset);
        let (tx, rx) = mpsc::channel(4096);
        let app = app.to_owned();
        tokio::spawn(async move {
            let mut messages = pubsub.into_on_message();
            loop {
                let message = tokio::select! {
                    _ = tx.closed() => return,
                    m = messages.next() => m,
                };
                let Some(message) = message else { return };
                let Ok(line) = message.get_payload::<String>() else {
                    continue;
                };
                let Some(entry) = decode(&app, &line) else {
                    continue;
                };
                if entry.offset <= last {
                    continue;
                }
                if tx.send(entry).await.is_err() {
                    return;
                }
            }
        });
        Ok((tail, rx))
    }

    /// Forgets `app`'s lines.
    pub(crate) async fn delete(&self, app: &str) -> redis::RedisResult<()> {
        let mut connection = self.connection.clone();
        let _: () = connection
            .del(&[
                format!("deis:logs:app:{app}"),
                format!("deis:logs:next:{app}"),
            ])
            .await?;
        Ok(())
    }
}
