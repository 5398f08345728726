//! L-BFGS (Nocedal & Wright, *Numerical Optimization*, 2nd ed., algorithm 7.4 and 7.5) over one
//! tensor: the two-loop recursion over the last `m` curvature pairs, and a backtracking line search
//! on the Armijo condition. tch has no L-BFGS, so this is ours.
//!
//! Optional box bounds make it a projected method: every trial point is clamped into the box and the
//! Armijo test uses the step actually taken. Images need this: pixels must stay in [0, 1], and an
//! unconstrained optimum puts much of the texture outside that range, where saving the image clips it.
use std::collections::VecDeque;

use tch::Tensor;

/// Armijo sufficient-decrease constant c₁ (Nocedal & Wright recommend 1e-4).
const ARMIJO_C1: f64 = 1e-4;
/// Smallest accepted cosine between s and y for a curvature pair.
const CURVATURE_EPS: f64 = 1e-10;
/// Line search halvings before the step is given up.
const MAX_BACKTRACKS: usize = 20;

/// What a function evaluation returns: the value and its gradient (same shape as `x`).
pub type Evaluation = (f64, Tensor);

/// The optimiser's state between steps.
pub struct Lbfgs {
    history: usize,
    pairs: VecDeque<(Tensor, Tensor, f64)>, // (s, y, 1 / yᵀs)
    current: Option<Evaluation>,
    evaluations: usize,
    bounds: Option<(f64, f64)>,
}

/// The result of one L-BFGS step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepOutcome {
    /// The step was accepted; `value` is f at the new point.
    Moved {
        /// f(x) after the step.
        value: f64,
    },
    /// No step along the search direction decreased f: x is (numerically) at a minimum.
    Converged {
        /// f(x), unchanged.
        value: f64,
    },
    /// f returned NaN or infinity at the current point.
    NonFinite,
}

impl Lbfgs {
    /// An optimiser that keeps `history` curvature pairs (5 to 20 is typical).
    pub fn new(history: usize) -> Self {
        Lbfgs {
            history: history.max(1),
            pairs: VecDeque::new(),
            current: None,
            evaluations: 0,
            bounds: None,
        }
    }

    /// Keeps every iterate inside `[low, high]` (element-wise projection).
    pub fn with_bounds(mut self, low: f64, high: f64) -> Self {
        self.bounds = Some((low, high));
        self
    }

    /// Function evaluations so far (a step costs one or more).
    pub fn evaluations(&self) -> usize {
        self.evaluations
    }

    /// One iteration: direction from the two-loop recursion, then a backtracking line search.
    /// `x` is updated in place; `f` evaluates value and gradient at a point.
    pub fn step(
        &mut self,
        x: &mut Tensor,
        f: &mut impl FnMut(&Tensor) -> Evaluation,
    ) -> StepOutcome {
        let (value, grad) = match self.current.take() {
            Some(current) => current,
            None => {
                self.evaluations += 1;
                f(x)
            }
        };
        if !value.is_finite() {
            return StepOutcome::NonFinite;
        }
        // Try the quasi-Newton direction; if the line search finds no decrease along it (stale
        // curvature, or a move the bounds clip away), forget the memory and try steepest descent.
        let with_memory = !self.pairs.is_empty();
        if let Some(outcome) = self.line_search(x, f, value, &grad) {
            return outcome;
        }
        if with_memory {
            self.pairs.clear();
            if let Some(outcome) = self.line_search(x, f, value, &grad) {
                return outcome;
            }
        }
        self.current = Some((value, grad));
        StepOutcome::Converged { value }
    }

    /// A backtracking line search from `x` along the current direction; `None` when no step decreases f.
    fn line_search(
        &mut self,
        x: &mut Tensor,
        f: &mut impl FnMut(&Tensor) -> Evaluation,
        value: f64,
        grad: &Tensor,
    ) -> Option<StepOutcome> {
        let mut direction = self.direction(grad);
        if dot(grad, &direction) >= 0.0 {
            // Not a descent direction (stale curvature): restart from steepest descent.
            self.pairs.clear();
            direction = -grad;
        }
        if dot(grad, &direction) == 0.0 {
            return None;
        }
        // Without curvature pairs, take a steepest-descent step of unit Euclidean length. (PyTorch's
        // 1/‖g‖₁ is far smaller on images with 10⁵ pixels: the resulting s and y drown in f32 gradient
        // noise, yᵀs comes out negative and no curvature pair is ever kept.)
        let mut t = if self.pairs.is_empty() {
            (1.0 / dot(grad, grad).sqrt()).min(1.0)
        } else {
            1.0
        };
        for _ in 0..MAX_BACKTRACKS {
            let mut candidate = &*x + &direction * t;
            if let Some((low, high)) = self.bounds {
                candidate = candidate.clamp(low, high);
            }
            // gᵀ(x_new − x): t·slope without bounds, the projected step's slope with them.
            let expected = dot(grad, &(&candidate - &*x));
            if expected >= 0.0 {
                // The projection removed all descent along this direction.
                t *= 0.5;
                continue;
            }
            self.evaluations += 1;
            let (new_value, new_grad) = f(&candidate);
            if new_value.is_finite() && new_value <= value + ARMIJO_C1 * expected {
                let s = &candidate - &*x;
                let y = &new_grad - grad;
                let ys = dot(&y, &s);
                // Keep the pair only with positive curvature, tested relative to the vectors' sizes so
                // the test does not depend on the loss scale (an absolute threshold would drop every
                // pair after a tiny first step on a large loss).
                if ys > CURVATURE_EPS * (dot(&s, &s) * dot(&y, &y)).sqrt() {
                    if self.pairs.len() == self.history {
                        self.pairs.pop_front();
                    }
                    self.pairs.push_back((s, y, 1.0 / ys));
                }
                *x = candidate;
                self.current = Some((new_value, new_grad));
                return Some(StepOutcome::Moved { value: new_value });
            }
            t *= 0.5;
        }
        None
    }

    /// −H·g by the two-loop recursion, with H₀ = γI, γ = sᵀy / yᵀy of the newest pair.
    fn direction(&self, grad: &Tensor) -> Tensor {
        let mut q = -grad;
        let mut alphas = Vec::with_capacity(self.pairs.len());
        for (s, y, rho) in self.pairs.iter().rev() {
            let alpha = rho * dot(s, &q);
            q -= y * alpha;
            alphas.push(alpha);
        }
        if let Some((_, y, rho)) = self.pairs.back() {
            q *= 1.0 / (rho * dot(y, y));
        }
        for ((s, y, rho), alpha) in self.pairs.iter().zip(alphas.into_iter().rev()) {
            let beta = rho * dot(y, &q);
            q += s * (alpha - beta);
        }
        q
    }
}

fn dot(a: &Tensor, b: &Tensor) -> f64 {
    (a * b).sum(tch::Kind::Double).double_value(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn run(
        x0: &[f64],
        iterations: usize,
        f: &mut impl FnMut(&Tensor) -> Evaluation,
    ) -> (Vec<f64>, f64) {
        let mut x = Tensor::from_slice(x0);
        let mut opt = Lbfgs::new(10);
        let mut value = f64::NAN;
        for _ in 0..iterations {
            match opt.step(&mut x, f) {
                StepOutcome::Moved { value: v } | StepOutcome::Converged { value: v } => value = v,
                StepOutcome::NonFinite => panic!("non-finite"),
            }
        }
        (Vec::<f64>::try_from(&x).unwrap(), value)
    }

    #[test]
    fn quadratic_reaches_the_exact_minimiser() {
        // f(x) = ½ xᵀAx − bᵀx with A = diag(1..10) (condition number 10): minimiser x* = A⁻¹b.
        let a = Tensor::arange_start(1, 11, (Kind::Double, Device::Cpu));
        let b = Tensor::from_slice(&[3.0f64, -1.0, 2.0, 0.5, 4.0, -2.0, 1.0, 0.0, 7.0, -5.0]);
        let mut f = |x: &Tensor| {
            let ax = &a * x;
            let value = 0.5 * dot(x, &ax) - dot(&b, x);
            (value, ax - &b)
        };
        let (x, value) = run(&[0.0; 10], 30, &mut f);
        let expected: Vec<f64> = (&b / &a).try_into().unwrap();
        for (got, want) in x.iter().zip(&expected) {
            assert!((got - want).abs() < 1e-6, "{x:?} vs {expected:?}");
        }
        let optimum = -0.5 * dot(&b, &(&b / &a));
        assert!((value - optimum).abs() < 1e-9);
    }

    #[test]
    fn rosenbrock_reaches_one_one() {
        // f(x, y) = (1 − x)² + 100 (y − x²)², minimum 0 at (1, 1), started from the classic (−1.2, 1).
        let mut f = |p: &Tensor| {
            let v: Vec<f64> = p.try_into().unwrap();
            let (x, y) = (v[0], v[1]);
            let value = (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2);
            let grad = [
                -2.0 * (1.0 - x) - 400.0 * x * (y - x * x),
                200.0 * (y - x * x),
            ];
            (value, Tensor::from_slice(&grad))
        };
        let (x, value) = run(&[-1.2, 1.0], 200, &mut f);
        assert!(
            (x[0] - 1.0).abs() < 1e-5 && (x[1] - 1.0).abs() < 1e-5,
            "{x:?}"
        );
        assert!(value < 1e-10, "{value}");
    }

    #[test]
    fn progress_does_not_depend_on_the_loss_scale() {
        // The same quadratic scaled by 1e8: L-BFGS is scale invariant after its first step, so it must
        // still reach the minimiser (an absolute curvature threshold once stalled here).
        let scale = 1e8;
        let mut f = |x: &Tensor| {
            let d = x - 0.5;
            (scale * dot(&d, &d), d * (2.0 * scale))
        };
        let (x, _) = run(&[0.0; 1000], 10, &mut f);
        assert!(x.iter().all(|v| (v - 0.5).abs() < 1e-6), "{:?}", &x[..3]);
    }

    #[test]
    fn bounds_hold_the_iterates_in_the_box() {
        // f = Σ (x − 2)² has its minimum at 2, outside [0, 1]: the constrained minimiser is 1.
        let mut f = |x: &Tensor| {
            let d = x - 2.0;
            (dot(&d, &d), d * 2.0)
        };
        let mut x = Tensor::from_slice(&[0.2f64, 0.5, 0.9]);
        let mut opt = Lbfgs::new(5).with_bounds(0.0, 1.0);
        for _ in 0..20 {
            opt.step(&mut x, &mut f);
            let v: Vec<f64> = (&x).try_into().unwrap();
            assert!(v.iter().all(|&e| (0.0..=1.0).contains(&e)), "{v:?}");
        }
        let v: Vec<f64> = (&x).try_into().unwrap();
        assert!(v.iter().all(|&e| (e - 1.0).abs() < 1e-9), "{v:?}");
    }

    #[test]
    fn non_finite_values_are_reported() {
        let mut f = |_: &Tensor| (f64::NAN, Tensor::zeros([2], (Kind::Double, Device::Cpu)));
        let mut x = Tensor::from_slice(&[1.0f64, 2.0]);
        assert_eq!(Lbfgs::new(5).step(&mut x, &mut f), StepOutcome::NonFinite);
    }
}
