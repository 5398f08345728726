//! Adam (Kingma & Ba, 2015) over one tensor, with PyTorch's bias-corrected update
//! (`torch.optim.Adam`, default betas (0.9, 0.999), eps 1e-8).
use tch::Tensor;

/// Adam's state for one parameter tensor.
pub struct Adam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    m: Tensor,
    v: Tensor,
    t: i32,
}

impl Adam {
    /// Adam with learning rate `lr` for a parameter shaped like `like`.
    pub fn new(lr: f64, like: &Tensor) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            m: like.zeros_like(),
            v: like.zeros_like(),
            t: 0,
        }
    }

    /// Changes the learning rate for the following steps (for a decay schedule).
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// The moment estimates `(m, v)` and the step count, for checkpoints.
    pub fn state(&self) -> (&Tensor, &Tensor, i32) {
        (&self.m, &self.v, self.t)
    }

    /// Restores moments and step count saved by [`Adam::state`].
    pub fn restore(&mut self, m: Tensor, v: Tensor, t: i32) {
        self.m = m;
        self.v = v;
        self.t = t;
    }

    /// Applies one update to `x` (in place, outside autograd) from its gradient `grad`.
    pub fn step(&mut self, x: &mut Tensor, grad: &Tensor) {
        self.t += 1;
        let _ = self
            .m
            .g_mul_scalar_(self.beta1)
            .g_add_(&(grad * (1.0 - self.beta1)));
        let _ = self
            .v
            .g_mul_scalar_(self.beta2)
            .g_add_(&(grad * grad * (1.0 - self.beta2)));
        let bias1 = 1.0 - self.beta1.powi(self.t);
        let bias2 = 1.0 - self.beta2.powi(self.t);
        let denom = self.v.sqrt() / bias2.sqrt() + self.eps;
        tch::no_grad(|| {
            let _ = x.g_sub_(&(&self.m / denom * (self.lr / bias1)));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_each_coordinate_by_lr_against_the_gradient_sign() {
        // With bias correction, Adam's first step is lr · g / (|g| + eps) per coordinate.
        let mut x = Tensor::from_slice(&[1.0f64, -2.0, 3.0]);
        let grad = Tensor::from_slice(&[10.0f64, -0.1, 0.0]);
        let mut adam = Adam::new(0.05, &x);
        adam.step(&mut x, &grad);
        let x: Vec<f64> = (&x).try_into().unwrap();
        assert!(
            (x[0] - 0.95).abs() < 1e-9 && (x[1] + 1.95).abs() < 1e-6 && x[2] == 3.0,
            "{x:?}"
        );
    }

    #[test]
    fn minimises_a_quadratic() {
        let target = Tensor::from_slice(&[0.3f64, -0.7]);
        let mut x = Tensor::from_slice(&[0.0f64, 0.0]);
        let mut adam = Adam::new(0.05, &x);
        for _ in 0..500 {
            let grad = (&x - &target) * 2.0;
            adam.step(&mut x, &grad);
        }
        assert!((&x - &target).abs().max().double_value(&[]) < 1e-3);
    }
}
