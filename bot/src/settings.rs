//! Where users' defaults are kept: in memory, and in Redis too when scaled out.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::redis_queue::RedisQueue;
use crate::session::Settings;

/// Per-user settings: in memory, and in Redis too when scaled out (so they outlive the process).
#[derive(Default)]
pub struct SettingsStore {
    users: Mutex<HashMap<u64, Settings>>,
    redis: Option<Arc<RedisQueue>>,
}

impl SettingsStore {
    /// Settings kept in Redis as well as in memory.
    pub fn in_redis(redis: Arc<RedisQueue>) -> Self {
        SettingsStore {
            users: Mutex::default(),
            redis: Some(redis),
        }
    }

    fn cached(&self, user: u64) -> Option<Settings> {
        self.users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&user)
            .copied()
    }

    fn cache(&self, user: u64, settings: Settings) {
        self.users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user, settings);
    }

    /// The user's settings (defaults if none were saved, or if Redis cannot be reached).
    pub async fn get(&self, user: u64) -> Settings {
        if let Some(settings) = self.cached(user) {
            return settings;
        }
        let Some(redis) = &self.redis else {
            return Settings::default();
        };
        match redis.settings(user).await {
            Ok(saved) => {
                let settings = saved.unwrap_or_default();
                self.cache(user, settings);
                settings
            }
            Err(e) => {
                tracing::warn!(user, "cannot read settings from Redis: {e:#}");
                Settings::default()
            }
        }
    }

    /// Changes and saves a user's settings.
    pub async fn update(&self, user: u64, change: impl FnOnce(&mut Settings)) -> Settings {
        let mut settings = self.get(user).await;
        change(&mut settings);
        self.cache(user, settings);
        if let Some(redis) = &self.redis
            && let Err(e) = redis.save_settings(user, &settings).await
        {
            tracing::warn!(user, "cannot save settings to Redis: {e:#}");
        }
        settings
    }
}
