"""The traits a template may read, as the profile schema declares them.

Publishing checks every variable against the workspace's profile schema, which the
profile service serves (`GetProfileSchema`). When it cannot be asked (down, too slow,
or not deployed), publishing goes on against `FALLBACK_TRAITS` — the common contact
traits, the computed traits the profile service maintains and the outputs of the
built-in predictive scorers — and unknown variables are then only warnings, with one
warning saying that the schema was not consulted.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailwright_render.errors import Issue, Severity

CONTACT_TRAITS = frozenset(
    {"email", "first_name", "last_name", "name", "phone", "mobile_phone", "company",
     "job_title", "website", "address", "city", "state", "postal_code", "country",
     "birthday", "language", "gender", "user_id", "created_at"}
)  # fmt: skip

_WINDOWED = ("page_views", "page_views_by_category", "product_views",
             "product_views_by_product", "product_views_by_category", "cart_adds")  # fmt: skip

COMPUTED_TRAITS = frozenset(
    {f"{name}_{days}d" for name in _WINDOWED for days in (7, 30, 90)}
    | {"first_seen", "last_seen", "orders_count", "purchases_per_month_90d", "total_revenue",
       "revenue_currency", "revenue_by_currency", "average_order_value",
       "first_purchase_date", "last_purchase_date", "days_since_last_purchase",
       "rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_score",
       "email_engagement_score", "opened_last_5_emails", "clicked_last_5_emails",
       "top_browsing_category", "lifecycle_stage", "timezone", "locale", "email_consent"}
)  # fmt: skip

PREDICTED_TRAITS = frozenset(
    {"clv_12m", "p_alive", "expected_purchases_12m", "expected_average_spend", "churn_risk",
     "purchase_propensity_30d", "best_send_hour", "best_send_day"}
)  # fmt: skip

FALLBACK_TRAITS = CONTACT_TRAITS | COMPUTED_TRAITS | PREDICTED_TRAITS


@dataclass(frozen=True)
class ProfileSchema:
    """Trait keys of a workspace; `authoritative` is False for the fallback list."""

    traits: frozenset[str]
    authoritative: bool = True
    reason: str = ""

    @classmethod
    def fallback(cls, reason: str) -> ProfileSchema:
        return cls(FALLBACK_TRAITS, authoritative=False, reason=reason)

    def severity(self, policy: Severity) -> Severity:
        """How bad an unknown variable is: the workspace's policy, or a warning on fallback."""
        return policy if self.authoritative else Severity.WARNING

    def notes(self) -> tuple[Issue, ...]:
        if self.authoritative:
            return ()
        return (
            Issue(
                Severity.WARNING,
                "profile-schema",
                f"the profile schema could not be read ({self.reason}); variables were checked"
                " against the built-in contact and computed traits only",
                "body",
            ),
        )
