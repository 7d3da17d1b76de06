"""Entry points of SageMaker Processing jobs that run from the pipeline's code bundle (pure mlcore computation)."""
