//! Sessions in Redis (ElastiCache): each refresh token a hash expiring with the token, each revoked
//! family a marker, each user's families a set. Rotation runs as one Lua script, so of two
//! concurrent presentations of a token only one rotates.

use async_trait::async_trait;

use super::{Rotation, Session, SessionStore, StoreError};

const ROTATE: &str = r#"
local token = redis.call('HGETALL', KEYS[1])
if #token == 0 then return {'invalid'} end
local t = {}
for i = 1, #token, 2 do t[token[i]] = token[i + 1] end
local revoked = ARGV[1] .. 'revoked:' .. t.family
if redis.call('EXISTS', revoked) == 1 then return {'invalid'} end
if t.spent == '1' then
  -- Presented again within the grace window, with the same successor (two tabs, a retry after a
  -- lost answer): that successor again, if it is still live.
  if t.spent_at and tonumber(ARGV[3]) - tonumber(t.spent_at) <= tonumber(ARGV[5]) then
    local next = redis.call('HMGET', KEYS[2], 'family', 'spent')
    if next[1] == t.family and next[2] == '0' then
      return {'rotated', t.family, t.user, t.amr}
    end
  end
  redis.call('SET', revoked, '1', 'PX', ARGV[4])
  return {'reused', t.family}
end
if tonumber(t.exp) <= tonumber(ARGV[3]) then return {'invalid'} end
redis.call('HSET', KEYS[1], 'spent', '1', 'spent_at', ARGV[3])
redis.call('HSET', KEYS[2], 'family', t.family, 'user', t.user, 'amr', t.amr, 'exp', ARGV[2], 'spent', '0')
redis.call('PEXPIREAT', KEYS[2], ARGV[2])
-- A family kept alive by refreshing stays findable for revoke_user.
local user = ARGV[1] .. 'user:' .. t.user
redis.call('SADD', user, t.family)
redis.call('PEXPIRE', user, ARGV[4])
return {'rotated', t.family, t.user, t.amr}
"#;

/// Sessions in Redis.
#[derive(Clone)]
pub struct RedisSessionStore {
    connection: platform::cache::redis::Connection,
    prefix: String,
    /// How long a revocation marker must outlive any token of its family (the refresh lifetime).
    revocation_ttl_ms: u64,
}

impl std::fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessionStore").field("prefix", &self.prefix).finish()
    }
}

impl RedisSessionStore {
    /// Connects to `url`; keys start with `prefix`.
    pub async fn connect(url: &str, prefix: impl Into<String>, refresh_ttl_secs: u64) -> Result<Self, StoreError> {
        let connection = platform::cache::redis::connection_manager(url).await.map_err(StoreError::backend)?;
        Ok(Self { connection, prefix: prefix.into(), revocation_ttl_ms: refresh_ttl_secs.saturating_mul(1000) })
    }

    fn token_key(&self, hash: &str) -> String {
        format!("{}token:{hash}", self.prefix)
    }

    fn user_key(&self, user_id: &str) -> String {
        format!("{}user:{user_id}", self.prefix)
    }

    fn revoked_key(&self, family_id: &str) -> String {
        format!("{}revoked:{family_id}", self.prefix)
    }
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn start(&self, session: &Session, token_hash: &str, expires_at: i64) -> Result<(), StoreError> {
        let key = self.token_key(token_hash);
        let user = self.user_key(&session.user_id);
        redis::pipe()
            .atomic()
            .cmd("HSET")
            .arg(&key)
            .arg("family")
            .arg(&session.family_id)
            .arg("user")
            .arg(&session.user_id)
            .arg("amr")
            .arg(session.amr_text())
            .arg("exp")
            .arg(expires_at)
            .arg("spent")
            .arg("0")
            .ignore()
            .cmd("PEXPIREAT")
            .arg(&key)
            .arg(expires_at)
            .ignore()
            .cmd("SADD")
            .arg(&user)
            .arg(&session.family_id)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&user)
            .arg(self.revocation_ttl_ms)
            .ignore()
            .query_async::<()>(&mut self.connection.clone())
            .await
            .map_err(StoreError::backend)
    }

    async fn rotate(
        &self,
        presented: &str,
        next: &str,
        next_expires_at: i64,
        now: i64,
        grace_ms: i64,
    ) -> Result<Rotation, StoreError> {
        let reply: Vec<String> = redis::Script::new(ROTATE)
            .key(self.token_key(presented))
            .key(self.token_key(next))
            .arg(&self.prefix)
            .arg(next_expires_at)
            .arg(now)
            .arg(self.revocation_ttl_ms)
            .arg(grace_ms)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(StoreError::backend)?;
        Ok(match reply.as_slice() {
            [kind, family, user, amr] if kind == "rotated" => Rotation::Rotated(Session {
                family_id: family.clone(),
                user_id: user.clone(),
                amr: Session::parse_amr(amr),
            }),
            [kind, family] if kind == "reused" => Rotation::Reused { family_id: family.clone() },
            _ => Rotation::Invalid,
        })
    }

    async fn revoke(&self, presented: &str) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let family: Option<String> = redis::cmd("HGET")
            .arg(self.token_key(presented))
            .arg("family")
            .query_async(&mut connection)
            .await
            .map_err(StoreError::backend)?;
        if let Some(family) = family {
            redis::cmd("SET")
                .arg(self.revoked_key(&family))
                .arg("1")
                .arg("PX")
                .arg(self.revocation_ttl_ms)
                .query_async::<()>(&mut connection)
                .await
                .map_err(StoreError::backend)?;
        }
        Ok(())
    }

    async fn revoke_user(&self, user_id: &str) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let families: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.user_key(user_id))
            .query_async(&mut connection)
            .await
            .map_err(StoreError::backend)?;
        if families.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for family in &families {
            pipe.cmd("SET").arg(self.revoked_key(family)).arg("1").arg("PX").arg(self.revocation_ttl_ms).ignore();
        }
        pipe.query_async::<()>(&mut connection).await.map_err(StoreError::backend)
    }
}
